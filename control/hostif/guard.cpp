#include "control/hostif/guard.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace nimbus::hostif {

int run_command(const std::vector<std::string>& argv, const std::string& input, std::string* output) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        std::vector<char*> a;
        for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        execvp(a[0], a.data());
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    size_t off = 0;
    while (off < input.size()) {
        ssize_t n = write(in[1], input.data() + off, input.size() - off);
        if (n <= 0) break;
        off += size_t(n);
    }
    close(in[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0)
        if (output) output->append(buf, size_t(n));
    close(out[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool guard_underlay(const std::string& table, const std::vector<std::string>& ifaces, std::string* err) {
    unguard_underlay(table);  // a table left by a crashed instance
    if (ifaces.empty()) return true;
    std::string rules = fmt::format("table netdev {} {{\n", table);
    for (size_t i = 0; i < ifaces.size(); i++)
        rules += fmt::format("  chain in{} {{ type filter hook ingress device \"{}\" priority -500; policy drop; }}\n",
                             i, ifaces[i]);
    rules += "}\n";
    std::string out;
    int rc = run_command({"nft", "-f", "-"}, rules, &out);
    if (rc != 0) {
        *err = rc == 127 ? "nft not found (install nftables): cannot keep the kernel off af_packet interfaces"
                         : fmt::format("nft failed: {}", out);
        return false;
    }
    return true;
}

void unguard_underlay(const std::string& table) {
    std::string out;
    run_command({"nft", "delete", "table", "netdev", table}, "", &out);
}

}  // namespace nimbus::hostif
