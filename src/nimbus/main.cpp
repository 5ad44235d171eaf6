// nimbus: the command-line interface, vtysh style. With a command it runs it
// once; without, it opens an interactive shell (libedit: history, tab
// completion of commands and of names, `?` lists what can follow). Talks to
// nimbusd over its unix socket.
#include <editline/readline.h>
#include <getopt.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace {

std::string g_sock;

void usage(FILE* f) {
    fmt::print(f,
               "usage: nimbus [-s SOCKET] [-j] [COMMAND...]\n"
               "       nimbus [-s SOCKET] [-j] -c \"COMMAND\"\n"
               "  -s, --socket PATH   nimbusd's CLI socket (default $NIMBUS_SOCKET or /run/nimbus/nimbusd.sock)\n"
               "  -j, --json          machine-readable output\n"
               "  -c, --command CMD   run one command given as a single string\n"
               "Without a command: an interactive shell (Tab completes, '?' lists what can follow,\n"
               "'exit' leaves). Examples: nimbus show interfaces; nimbus -j show ip route vrf corp\n");
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
        size_t j = i;
        while (j < s.size() && s[j] != ' ' && s[j] != '\t') j++;
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

// One request, one reply.
std::optional<nlohmann::json> request(const nlohmann::json& req, std::string* err) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, g_sock.c_str(), sizeof sa.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        *err = fmt::format("cannot reach nimbusd at {}: {}", g_sock, strerror(errno));
        close(fd);
        return std::nullopt;
    }
    std::string out = req.dump() + "\n";
    if (write(fd, out.data(), out.size()) != ssize_t(out.size())) {
        *err = fmt::format("write: {}", strerror(errno));
        close(fd);
        return std::nullopt;
    }
    std::string in;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) in.append(buf, size_t(n));
    close(fd);
    try {
        return nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        *err = fmt::format("bad reply from nimbusd: {}", e.what());
        return std::nullopt;
    }
}

// Runs a command and prints its output; returns the exit status.
int run(const std::vector<std::string>& words, bool json) {
    std::string err;
    auto rep = request({{"argv", words}, {"json", json}}, &err);
    if (!rep) {
        fmt::print(stderr, "nimbus: {}\n", err);
        return 3;
    }
    int status = rep->value("status", 1);
    if (status != 0) {
        fmt::print(stderr, "{}\n", rep->value("text", std::string("% error")));
        return 1;
    }
    if (json || rep->value("json", false)) fmt::print("{}\n", (*rep)["data"].dump(2));
    else fmt::print("{}", rep->value("text", std::string()));
    std::fflush(stdout);
    return 0;
}

struct Candidate {
    std::string word, help;
};

// What may follow the words typed so far, from nimbusd's command registry.
std::vector<Candidate> candidates(const std::vector<std::string>& words) {
    std::string err;
    auto rep = request({{"complete", words}}, &err);
    std::vector<Candidate> out;
    if (!rep || !(*rep)["data"].is_array()) return out;
    for (auto& c : (*rep)["data"]) out.push_back({c.value("word", ""), c.value("help", "")});
    return out;
}

bool is_placeholder(const std::string& w) {
    if (w.empty() || w == "<cr>") return true;
    for (char c : w)
        if (!(std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
            return false;
    return true;
}

std::vector<std::string> g_matches;

char* generator(const char*, int state) {
    static size_t i;
    if (state == 0) i = 0;
    if (i < g_matches.size()) return strdup(g_matches[i++].c_str());
    return nullptr;
}

char** complete(const char* text, int start, int) {
    rl_attempted_completion_over = 1;  // never fall back to file names
    std::string before(rl_line_buffer, size_t(start));
    g_matches.clear();
    std::string prefix = text;
    for (auto& c : candidates(split(before)))
        if (!is_placeholder(c.word) && c.word.compare(0, prefix.size(), prefix) == 0) g_matches.push_back(c.word);
    if (g_matches.empty()) return nullptr;
    return rl_completion_matches(text, generator);
}

// '?': list what can follow, with help, then redraw the line.
int help_key(int, int) {
    std::string line(rl_line_buffer, size_t(rl_point));
    bool partial = !line.empty() && line.back() != ' ';
    auto words = split(line);
    std::string prefix;
    if (partial && !words.empty()) {
        prefix = words.back();
        words.pop_back();
    }
    fmt::print("?\n");
    for (auto& c : candidates(words))
        if (c.word.compare(0, prefix.size(), prefix) == 0 || c.word == "<cr>")
            fmt::print("  {:<24} {}\n", c.word, c.help);
    std::fflush(stdout);
    rl_on_new_line();
    rl_redisplay();  // libedit: pushes the reprint key, bound to ed-redisplay below
    return 0;
}

int shell(bool json) {
    std::string err;
    auto ver = request({{"argv", {"show", "version"}}, {"json", true}}, &err);
    if (!ver) {
        fmt::print(stderr, "nimbus: {}\n", err);
        return 3;
    }
    std::string node = (*ver)["data"].value("node", std::string("nimbus"));
    std::string prompt = node + "> ";
    bool tty = isatty(0);
    std::string hist;
    if (tty) {
        rl_readline_name = const_cast<char*>("nimbus");
        rl_attempted_completion_function = complete;
        rl_initialize();
        // libedit's rl_bind_key binds only rl_insert; rl_add_defun binds a function.
        rl_add_defun("nimbus-help", help_key, '?');
        // libedit's rl_redisplay() pushes ^R, which emacs mode binds to
        // incremental search: make it redraw the line instead.
        rl_parse_and_bind("bind ^R ed-redisplay");
        const char* home = getenv("HOME");
        if (home) hist = std::string(home) + "/.nimbus_history";
        using_history();
        if (!hist.empty()) read_history(hist.c_str());
        fmt::print("nimbus shell on {} ({}). Tab completes, '?' lists, 'exit' leaves.\n", node, g_sock);
    }
    int last = 0;
    for (;;) {
        std::string line;
        if (tty) {
            char* l = readline(prompt.c_str());
            if (!l) {
                fmt::print("\n");
                break;
            }
            line = l;
            free(l);
        } else if (!std::getline(std::cin, line)) {
            break;
        }
        auto words = split(line);
        if (words.empty()) continue;
        if (tty) add_history(line.c_str());
        if (words[0] == "exit" || words[0] == "quit" || words[0] == "end") break;
        last = run(words, json);
    }
    if (tty && !hist.empty()) write_history(hist.c_str());
    return last;
}

}  // namespace

int main(int argc, char** argv) {
    static const option opts[] = {{"socket", required_argument, nullptr, 's'},
                                  {"json", no_argument, nullptr, 'j'},
                                  {"command", required_argument, nullptr, 'c'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    const char* env = getenv("NIMBUS_SOCKET");
    g_sock = env ? env : "/run/nimbus/nimbusd.sock";
    bool json = false;
    std::vector<std::string> words;
    int c;
    // '+': stop at the first non-option so command words are never options.
    while ((c = getopt_long(argc, argv, "+s:jc:h", opts, nullptr)) != -1) {
        switch (c) {
            case 's': g_sock = optarg; break;
            case 'j': json = true; break;
            case 'c': words = split(optarg); break;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    for (int i = optind; i < argc; i++) words.push_back(argv[i]);
    if (words.empty()) return shell(json);
    return run(words, json);
}
