#include "control/mgmt/cli_server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "src/common/log.h"
#include "src/common/memory.h"

namespace nimbus::mgmt {

namespace {
constexpr size_t kMaxRequest = 64 * 1024;
// Replies with more JSON values than this are serialised, written and freed
// by a helper thread: `show tunnels | json` at 100,000 tunnels is ~100 MB
// of JSON, and dumping and freeing it on the control thread held VRRP
// adverts, IKE and ZAPI for seconds. At most kMaxWriters at once; past that
// the control thread does it itself (slow, never lost).
constexpr size_t kOffloadValues = 256;
constexpr int kMaxWriters = 4;
constexpr size_t kGiveBackBytes = 4 << 20;  // a reply this big: give the memory back after it
std::atomic<int> writers{0};

size_t values_in(const nlohmann::json& j) {
    return j.is_array() || j.is_object() ? j.size() : 1;
}

// Writes `out` to the (now blocking) socket and closes it. A client that
// stops reading for 10 s loses its reply rather than a thread forever.
void write_all_and_close(int fd, const std::string& out) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t sent = 0;
    while (sent < out.size()) {
        ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n > 0) sent += size_t(n);
        else if (n < 0 && errno == EINTR) continue;
        else break;
    }
    ::close(fd);
}
}  // namespace

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
    std::vector<std::pair<bool, std::string>> lines;  // include?, text
    for (auto& f : filters) {
        if (f.size() == 1 && f[0] == "json") continue;
        if (f.size() < 2 || (f[0] != "include" && f[0] != "exclude"))
            return Result::error("% Unknown filter; use '| include TEXT', '| exclude TEXT' or '| json'");
        std::string pat = f[1];
        for (size_t k = 2; k < f.size(); k++) pat += " " + f[k];
        lines.emplace_back(f[0] == "include", pat);
    }
    Result r = reg_.run(argv, json);
    r.json = json;
    if (lines.empty()) return r;
    auto apply = [lines](const std::string& text) {
        std::string cur = text;
        for (auto& [inc, pat] : lines) {
            std::string out;
            size_t s = 0;
            while (s < cur.size()) {
                size_t e = cur.find('\n', s);
                if (e == std::string::npos) e = cur.size();
                std::string_view line(cur.data() + s, e - s);
                if ((line.find(pat) != std::string_view::npos) == inc) out.append(line).push_back('\n');
                s = e + 1;
            }
            cur = std::move(out);
        }
        return cur;
    };
    if (r.make)
        r.make = [inner = std::move(r.make), apply] {
            Result x = inner();
            x.text = apply(x.built_text());
            return x;
        };
    else if (r.make_text) r.make_text = [inner = std::move(r.make_text), apply] { return apply(inner()); };
    else r.text = apply(r.text);
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
            std::function<nlohmann::json()> make;  // deferred data and text (Result::make_*)
            std::function<std::string()> make_text;
            std::function<Result()> make_all;  // the whole result deferred (Result::make)
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
                    make = std::move(r.make_data);
                    make_text = std::move(r.make_text);
                    make_all = std::move(r.make);
                }
            } catch (const std::exception& e) {
                reply = {{"status", 1}, {"text", std::string("% bad request: ") + e.what()}, {"data", nullptr}};
            }
            bool big = make || make_text || values_in(reply["data"]) > kOffloadValues;
            // A whole deferred result may wait for the control thread: it
            // always gets its own thread (they queue on the work itself).
            if (make_all || (big && writers.fetch_add(1) < kMaxWriters)) {
                if (make_all) writers.fetch_add(1);
                // The connection leaves the loop; the thread owns fd, reply
                // and what the handler captured.
                loop_.del_fd(fd);
                conns_.erase(it);
                std::thread([fd, reply = std::move(reply), make = std::move(make), make_text = std::move(make_text),
                             make_all = std::move(make_all)]() mutable {
                    if (make_all) {
                        Result x = make_all();
                        x.built();
                        reply = {{"status", x.status}, {"text", std::move(x.text)}, {"json", reply["json"]}};
                        reply["data"] = std::move(x.data);
                        make_all = nullptr;
                    }
                    if (make) reply["data"] = make();
                    if (make_text) reply["text"] = make_text();
                    make = nullptr;
                    make_text = nullptr;
                    std::string out = reply.dump() + "\n";
                    reply = nullptr;
                    write_all_and_close(fd, out);
                    // A big listing's rows, JSON and text stay resident in
                    // this thread's arena once freed: at 100,000 tunnels
                    // `show ipsec sa | json` added ~270 MB each time.
                    bool trim = out.size() > kGiveBackBytes;
                    out = std::string();
                    if (trim) give_back_memory("reply");
                    writers.fetch_sub(1);
                }).detach();
                return;
            }
            if (big) writers.fetch_sub(1);  // all writers busy: done here
            if (make) reply["data"] = make();
            if (make_text) reply["text"] = make_text();
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
