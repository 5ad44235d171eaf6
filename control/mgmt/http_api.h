// The management API for remote orchestration, over HTTPS with mutual TLS
// (cpp-httplib + OpenSSL from Debian), and the Prometheus endpoint.
//
//   GET  /v1/status          version, interfaces, counters summary    (reader)
//   GET  /v1/config          running config, secrets redacted         (reader)
//   PUT  /v1/config          apply a config; 200 with the diff applied,
//                            422 with file:line:column errors, 409 if refused
//                                                                     (admin)
//   POST /v1/cli             {"argv": [...]}: any CLI command; show
//                            commands need reader, others admin
//   GET  /metrics            Prometheus text exposition               (reader)
//
// A client without a certificate signed by the management CA is refused at
// the TLS handshake, and that is logged. The role comes from the client
// certificate's subject CN (lists in the config). Requests are served by
// httplib's threads; handlers run on the control thread (Bridge), except a
// config apply, which parses and plans on the HTTP thread and has the
// control thread run only its steps, and the building of big replies.
// An optional plain-HTTP listener serves GET /metrics only, for a scraper on
// a management address.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/loop/bridge.h"
#include "control/mgmt/commands.h"
#include "control/mgmt/metrics.h"

namespace httplib {
class Server;
}

namespace nimbus::mgmt {

struct ApiConfig {
    std::string listen;  // "ADDR:PORT" for HTTPS; empty: off
    std::string cert, key, client_ca;
    std::vector<std::string> admins, readers;  // client certificate CNs
    std::string metrics_listen;                // "ADDR:PORT" plain HTTP, /metrics only
};

struct ApiHooks {
    std::function<nlohmann::json()> status;
    std::function<std::string()> running_config;  // YAML, secrets redacted
    // Applies a config text; returns {"http": code, ...body...}. Called on
    // the HTTP thread (it waits for the control thread itself, if at all).
    std::function<nlohmann::json(const std::string& yaml, const std::string& who)> apply;
};

class HttpApi {
public:
    HttpApi(control::Loop& loop, const Registry& reg, const Metrics& metrics, ApiHooks hooks);
    ~HttpApi();
    bool start(const ApiConfig& cfg, std::string* err);
    void stop();
    // The port actually bound (useful with port 0 in tests).
    int https_port() const { return https_port_; }
    int metrics_port() const { return metrics_port_; }

private:
    enum class Role { None, Reader, Admin };
    Role role_of(const std::string& cn) const;

    control::Bridge bridge_;
    const Registry& reg_;
    const Metrics& metrics_;
    ApiHooks hooks_;
    ApiConfig cfg_;
    std::unique_ptr<httplib::Server> https_, http_;
    std::thread https_thread_, http_thread_;
    int https_port_ = 0, metrics_port_ = 0;
};

bool split_host_port(const std::string& s, std::string* host, int* port);

}  // namespace nimbus::mgmt
