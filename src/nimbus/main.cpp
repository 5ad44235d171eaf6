// nimbus: the command-line interface. Sends one command to nimbusd over its
// unix socket and prints the answer (-j: JSON).
#include <getopt.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace {

void usage(FILE* f) {
    fmt::print(f,
               "usage: nimbus [-s SOCKET] [-j] COMMAND...\n"
               "       nimbus [-s SOCKET] [-j] -c \"COMMAND\"\n"
               "  -s, --socket PATH   nimbusd's CLI socket (default $NIMBUS_SOCKET or /run/nimbus/nimbusd.sock)\n"
               "  -j, --json          machine-readable output\n"
               "  -c, --command CMD   run one command given as a single string\n"
               "example: nimbus show interfaces; nimbus -j show ip route vrf corp; nimbus help\n");
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ') i++;
        size_t j = i;
        while (j < s.size() && s[j] != ' ') j++;
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    static const option opts[] = {{"socket", required_argument, nullptr, 's'},
                                  {"json", no_argument, nullptr, 'j'},
                                  {"command", required_argument, nullptr, 'c'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    const char* env = getenv("NIMBUS_SOCKET");
    std::string path = env ? env : "/run/nimbus/nimbusd.sock";
    bool json = false;
    std::vector<std::string> words;
    int c;
    // '+': stop at the first non-option so command words are never options.
    while ((c = getopt_long(argc, argv, "+s:jc:h", opts, nullptr)) != -1) {
        switch (c) {
            case 's': path = optarg; break;
            case 'j': json = true; break;
            case 'c': words = split(optarg); break;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    for (int i = optind; i < argc; i++) words.push_back(argv[i]);
    if (words.empty()) {
        usage(stderr);
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        fmt::print(stderr, "nimbus: cannot reach nimbusd at {}: {}\n", path, strerror(errno));
        return 3;
    }
    nlohmann::json req = {{"argv", words}, {"json", json}};
    std::string out = req.dump() + "\n";
    if (write(fd, out.data(), out.size()) != ssize_t(out.size())) {
        fmt::print(stderr, "nimbus: write: {}\n", strerror(errno));
        return 3;
    }
    std::string in;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) in.append(buf, size_t(n));
    close(fd);
    nlohmann::json rep;
    try {
        rep = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        fmt::print(stderr, "nimbus: bad reply from nimbusd: {}\n", e.what());
        return 3;
    }
    int status = rep.value("status", 1);
    if (status != 0) {
        fmt::print(stderr, "{}\n", rep.value("text", std::string("% error")));
        return 1;
    }
    if (json) fmt::print("{}\n", rep["data"].dump(2));
    else fmt::print("{}", rep.value("text", std::string()));
    return 0;
}
