// The CLI socket: a unix stream socket (root only) on which `nimbus` sends
// one request line of JSON {"argv": [...], "json": bool} and reads one JSON
// reply {"status": N, "text": "...", "data": ...}. Output filters
// ("| include WORD", "| json") are applied here for every command.
#pragma once

#include <string>
#include <unordered_map>

#include "control/loop/loop.h"
#include "control/mgmt/commands.h"

namespace nimbus::mgmt {

class CliServer {
public:
    CliServer(control::Loop& loop, const Registry& reg) : loop_(loop), reg_(reg) {}
    ~CliServer();
    bool listen(const std::string& path, std::string* err);
    void close();
    // Runs a command line as the socket would (also used by tests).
    Result dispatch(const std::vector<std::string>& argv, bool json) const;

private:
    struct Conn {
        std::string in, out;
        size_t sent = 0;
    };
    void on_accept();
    void on_conn(int fd, uint32_t ev);
    void drop(int fd);

    control::Loop& loop_;
    const Registry& reg_;
    int lfd_ = -1;
    std::string path_;
    std::unordered_map<int, Conn> conns_;
};

}  // namespace nimbus::mgmt
