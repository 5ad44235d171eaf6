#include "control/mgmt/cli_server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "src/common/log.h"

namespace nimbus::mgmt {

namespace {
constexpr size_t kMaxRequest = 64 * 1024;
}

CliServer::~CliServer() { close(); }

bool CliServer::listen(const std::string& path, std::string* err) {
    sockaddr_un sa{};
    if (path.size() >= sizeof sa.sun_path) {
        *err = fmt::format("CLI socket path too long: {}", path);
        return false;
    }
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    // A socket file left by a crashed daemon: remove it only if nobody answers.
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (::connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        ::close(probe);
        *err = fmt::format("CLI socket {} is in use by a running nimbusd", path);
        return false;
    }
    ::close(probe);
    unlink(path.c_str());
    lfd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    mode_t old = umask(0077);  // root only
    int r = bind(lfd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    umask(old);
    if (r != 0 || ::listen(lfd_, 16) != 0) {
        *err = fmt::format("CLI socket {}: {}", path, strerror(errno));
        ::close(lfd_);
        lfd_ = -1;
        return false;
    }
    path_ = path;
    loop_.add_fd(lfd_, EPOLLIN, [this](uint32_t) { on_accept(); });
    return true;
}

void CliServer::close() {
    for (auto& [fd, c] : conns_) {
        loop_.del_fd(fd);
        ::close(fd);
    }
    conns_.clear();
    if (lfd_ >= 0) {
        loop_.del_fd(lfd_);
        ::close(lfd_);
        lfd_ = -1;
        unlink(path_.c_str());
    }
}

void CliServer::on_accept() {
    for (;;) {
        int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        ucred cr{};
        socklen_t len = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || cr.uid != 0) {
            LOG_WARN("cli", "event=refused uid={} pid={}", cr.uid, cr.pid);
            ::close(fd);
            continue;
        }
        conns_[fd] = Conn{};
        loop_.add_fd(fd, EPOLLIN | EPOLLRDHUP, [this, fd](uint32_t ev) { on_conn(fd, ev); });
    }
}

void CliServer::drop(int fd) {
    loop_.del_fd(fd);
    ::close(fd);
    conns_.erase(fd);
}

Result CliServer::dispatch(const std::vector<std::string>& argv_in, bool json) const {
    // Output filters after a '|': "include WORD", "exclude WORD", "json".
    std::vector<std::string> argv;
    std::vector<std::vector<std::string>> filters;
    for (auto& w : argv_in) {
        if (w == "|") filters.emplace_back();
        else if (!filters.empty()) filters.back().push_back(w);
        else argv.push_back(w);
    }
    for (auto& f : filters)
        if (f.size() == 1 && f[0] == "json") json = true;
    Result r = reg_.run(argv, json);
    r.json = json;
    for (auto& f : filters) {
        if (f.size() == 1 && f[0] == "json") continue;
        if (f.size() < 2 || (f[0] != "include" && f[0] != "exclude"))
            return Result::error("% Unknown filter; use '| include TEXT', '| exclude TEXT' or '| json'");
        bool inc = f[0] == "include";
        std::string pat = f[1];
        for (size_t k = 2; k < f.size(); k++) pat += " " + f[k];
        std::string out;
        size_t s = 0;
        while (s < r.text.size()) {
            size_t e = r.text.find('\n', s);
            if (e == std::string::npos) e = r.text.size();
            std::string line = r.text.substr(s, e - s);
            if ((line.find(pat) != std::string::npos) == inc) out += line + "\n";
            s = e + 1;
        }
        r.text = out;
    }
    return r;
}

void CliServer::on_conn(int fd, uint32_t ev) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Conn& c = it->second;
    if (ev & EPOLLIN) {
        char buf[4096];
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n > 0) {
                c.in.append(buf, size_t(n));
                if (c.in.size() > kMaxRequest) return drop(fd);
                continue;
            }
            if (n == 0 && c.in.find('\n') == std::string::npos) return drop(fd);
            break;
        }
        size_t nl = c.in.find('\n');
        if (nl != std::string::npos && c.out.empty()) {
            nlohmann::json reply;
            try {
                auto req = nlohmann::json::parse(c.in.substr(0, nl));
                if (req.contains("complete")) {
                    // {"complete": [words typed so far]} -> what may follow, with help.
                    auto words = req.at("complete").get<std::vector<std::string>>();
                    nlohmann::json cands = nlohmann::json::array();
                    for (auto& [w, h] : reg_.next_words(words)) cands.push_back({{"word", w}, {"help", h}});
                    reply = {{"status", 0}, {"text", ""}, {"data", cands}};
                } else {
                    auto argv = req.at("argv").get<std::vector<std::string>>();
                    bool json = req.value("json", false);
                    Result r = dispatch(argv, json);
                    reply = {{"status", r.status}, {"text", std::move(r.text)}, {"json", r.json}};
                    reply["data"] = std::move(r.data);   // not a copy: 5,000 tunnels are 4.5 MB of JSON
                }
            } catch (const std::exception& e) {
                reply = {{"status", 1}, {"text", std::string("% bad request: ") + e.what()}, {"data", nullptr}};
            }
            c.out = reply.dump() + "\n";
            loop_.mod_fd(fd, EPOLLOUT);
        }
    }
    if ((ev & EPOLLOUT) && !c.out.empty()) {
        while (c.sent < c.out.size()) {
            ssize_t n = write(fd, c.out.data() + c.sent, c.out.size() - c.sent);
            if (n > 0) c.sent += size_t(n);
            else if (n < 0 && errno == EAGAIN) return;
            else return drop(fd);
        }
        return drop(fd);
    }
    if (ev & (EPOLLHUP | EPOLLERR)) drop(fd);
}

}  // namespace nimbus::mgmt
