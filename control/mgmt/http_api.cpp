#include "control/mgmt/http_api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include "src/common/log.h"

namespace nimbus::mgmt {

namespace {

std::string peer_of_fd(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char buf[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf);
        port = ntohs(s4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
        port = ntohs(s6->sin6_port);
    }
    return fmt::format("{}:{}", buf, port);
}

std::string subject_of(X509* c) {
    if (!c) return "";
    char buf[512] = {};
    X509_NAME_oneline(X509_get_subject_name(c), buf, sizeof buf - 1);
    return buf;
}

// A client certificate that fails verification: say which and why.
int verify_cb(int ok, X509_STORE_CTX* x) {
    if (!ok) {
        int err = X509_STORE_CTX_get_error(x);
        LOG_WARN("api", "event=client_cert_rejected subject=\"{}\" reason=\"{}\"",
                 subject_of(X509_STORE_CTX_get_current_cert(x)), X509_verify_cert_error_string(err));
    }
    return ok;
}

// Handshakes we end with an alert (no certificate, a bad one): who and why.
void info_cb(const SSL* ssl, int where, int ret) {
    if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE) && (ret >> 8) == SSL3_AL_FATAL)
        LOG_WARN("api", "event=tls_refused peer={} alert=\"{}\"", peer_of_fd(SSL_get_fd(ssl)),
                 SSL_alert_desc_string_long(ret));
}

std::string cn_of(const httplib::Request& req) {
    if (!req.ssl) return "";
    X509* c = SSL_get1_peer_certificate(req.ssl);
    if (!c) return "";
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, buf, sizeof buf - 1);
    X509_free(c);
    return buf;
}

void reply_json(httplib::Response& res, int code, const nlohmann::json& j) {
    res.status = code;
    res.set_content(j.dump(2) + "\n", "application/json");
}

}  // namespace

bool split_host_port(const std::string& s, std::string* host, int* port) {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    std::string h = s.substr(0, colon);
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    std::string p = s.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
    int v = std::stoi(p);
    if (v > 65535) return false;
    *host = h;
    *port = v;
    return true;
}

HttpApi::HttpApi(control::Loop& loop, const Registry& reg, const Metrics& metrics, ApiHooks hooks)
    : bridge_(loop), reg_(reg), metrics_(metrics), hooks_(std::move(hooks)) {}

HttpApi::~HttpApi() { stop(); }

HttpApi::Role HttpApi::role_of(const std::string& cn) const {
    for (auto& a : cfg_.admins)
        if (a == cn) return Role::Admin;
    for (auto& r : cfg_.readers)
        if (r == cn) return Role::Reader;
    return Role::None;
}

bool HttpApi::start(const ApiConfig& cfg, std::string* err) {
    cfg_ = cfg;
    if (!cfg.listen.empty()) {
        std::string host;
        int port;
        if (!split_host_port(cfg.listen, &host, &port)) {
            *err = fmt::format("API listen address '{}' is not ADDR:PORT", cfg.listen);
            return false;
        }
        auto setup = [cfg](SSL_CTX& ctx) -> bool {
            SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
            if (SSL_CTX_use_certificate_chain_file(&ctx, cfg.cert.c_str()) != 1) return false;
            if (SSL_CTX_use_PrivateKey_file(&ctx, cfg.key.c_str(), SSL_FILETYPE_PEM) != 1) return false;
            if (SSL_CTX_check_private_key(&ctx) != 1) return false;
            if (SSL_CTX_load_verify_locations(&ctx, cfg.client_ca.c_str(), nullptr) != 1) return false;
            STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_ca.c_str());
            if (names) SSL_CTX_set_client_CA_list(&ctx, names);
            // No certificate, no service: fail the handshake (mutual TLS).
            SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
            SSL_CTX_set_info_callback(&ctx, info_cb);
            return true;
        };
        auto srv = std::make_unique<httplib::SSLServer>(setup);
        if (!srv->is_valid()) {
            unsigned long e = ERR_get_error();
            *err = fmt::format("API TLS setup failed (cert {}, key {}, client CA {}): {}", cfg.cert, cfg.key,
                               cfg.client_ca, e ? ERR_error_string(e, nullptr) : "unreadable file");
            return false;
        }
        srv->set_payload_max_length(4 << 20);
        srv->set_read_timeout(10, 0);

        // Every handler: role check, then the work on the control thread.
        auto guard = [this](const httplib::Request& req, httplib::Response& res, Role need) -> std::string {
            std::string cn = cn_of(req);
            Role r = role_of(cn);
            bool ok = r == Role::Admin || (need == Role::Reader && r == Role::Reader);
            if (!ok) {
                LOG_WARN("api", "event=forbidden cn=\"{}\" method={} path={}", cn, req.method, req.path);
                reply_json(res, 403, {{"error", fmt::format("'{}' may not {} {}", cn, req.method, req.path)}});
                return "";
            }
            return cn.empty() ? "?" : cn;
        };
        auto busy = [](httplib::Response& res) { reply_json(res, 503, {{"error", "control plane busy"}}); };

        srv->Get("/v1/status", [this, guard, busy](const httplib::Request& req, httplib::Response& res) {
            if (guard(req, res, Role::Reader).empty()) return;
            auto j = bridge_.call<nlohmann::json>([this] { return hooks_.status(); });
            j ? reply_json(res, 200, *j) : busy(res);
        });
        srv->Get("/v1/config", [this, guard, busy](const httplib::Request& req, httplib::Response& res) {
            if (guard(req, res, Role::Reader).empty()) return;
            auto s = bridge_.call<std::string>([this] { return hooks_.running_config(); });
            if (!s) return busy(res);
            res.status = 200;
            res.set_content(*s, "application/yaml");
        });
        srv->Put("/v1/config", [this, guard, busy](const httplib::Request& req, httplib::Response& res) {
            std::string who = guard(req, res, Role::Admin);
            if (who.empty()) return;
            // On this HTTP thread: the hook parses and plans here and has
            // the control thread run only the steps.
            nlohmann::json j = hooks_.apply(req.body, who);
            int code = j.value("http", 200);
            j.erase("http");
            reply_json(res, code, j);
        });
        srv->Post("/v1/cli", [this, guard, busy](const httplib::Request& req, httplib::Response& res) {
            std::vector<std::string> argv;
            try {
                argv = nlohmann::json::parse(req.body).at("argv").get<std::vector<std::string>>();
            } catch (const std::exception& e) {
                return reply_json(res, 400, {{"error", std::string("body must be {\"argv\": [...]}: ") + e.what()}});
            }
            bool read_only = !argv.empty() && std::string("show").rfind(argv[0], 0) == 0 && argv[0].size() >= 2;
            std::string who = guard(req, res, read_only ? Role::Reader : Role::Admin);
            if (who.empty()) return;
            if (!read_only) LOG_INFO("api", "event=cli cn=\"{}\" command=\"{}\"", who, fmt::join(argv, " "));
            auto r = bridge_.call<Result>([this, argv] { return reg_.run(argv, true); });
            if (!r) return busy(res);
            r->built();  // on this HTTP thread (a config apply waits here for its commit)
            nlohmann::json out = {{"status", r->status}, {"text", std::move(r->text)}};
            out["data"] = std::move(r->data);
            reply_json(res, r->status == 0 ? 200 : 400, out);
        });
        srv->Get("/metrics", [this, guard, busy](const httplib::Request& req, httplib::Response& res) {
            if (guard(req, res, Role::Reader).empty()) return;
            auto s = bridge_.call<std::string>([this] { return metrics_.scrape(); });
            if (!s) return busy(res);
            res.set_content(*s, "text/plain; version=0.0.4");
        });
        int bound = port == 0 ? srv->bind_to_any_port(host) : (srv->bind_to_port(host, port) ? port : -1);
        if (bound <= 0) {
            *err = fmt::format("API cannot listen on {}: {}", cfg.listen, strerror(errno));
            return false;
        }
        https_port_ = bound;
        https_ = std::move(srv);
        https_thread_ = std::thread([this] { https_->listen_after_bind(); });
        LOG_INFO("api", "event=listening scheme=https addr={} port={}", host, bound);
    }
    if (!cfg.metrics_listen.empty()) {
        std::string host;
        int port;
        if (!split_host_port(cfg.metrics_listen, &host, &port)) {
            *err = fmt::format("metrics listen address '{}' is not ADDR:PORT", cfg.metrics_listen);
            return false;
        }
        auto srv = std::make_unique<httplib::Server>();
        srv->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            auto s = bridge_.call<std::string>([this] { return metrics_.scrape(); });
            if (!s) {
                res.status = 503;
                return;
            }
            res.set_content(*s, "text/plain; version=0.0.4");
        });
        int bound = port == 0 ? srv->bind_to_any_port(host) : (srv->bind_to_port(host, port) ? port : -1);
        if (bound <= 0) {
            *err = fmt::format("metrics cannot listen on {}: {}", cfg.metrics_listen, strerror(errno));
            return false;
        }
        metrics_port_ = bound;
        http_ = std::move(srv);
        http_thread_ = std::thread([this] { http_->listen_after_bind(); });
        LOG_INFO("api", "event=listening scheme=http addr={} port={} paths=/metrics", host, bound);
    }
    return true;
}

void HttpApi::stop() {
    bridge_.close();
    if (https_) https_->stop();
    if (http_) http_->stop();
    if (https_thread_.joinable()) https_thread_.join();
    if (http_thread_.joinable()) http_thread_.join();
    https_.reset();
    http_.reset();
}

}  // namespace nimbus::mgmt
