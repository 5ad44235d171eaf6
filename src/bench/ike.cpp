// nimbus-bench ike: IKEv2 handshakes per second of the concentrator's
// engine on one control core, next to the bound that OpenSSL's public-key
// operations allow on this machine, then a reconnect storm.
//
//   nimbus-bench ike [--seconds S] [--rounds K] [--concurrency C] [--sites N] [--no-storm]
//
// The concentrator is nimbus's IKE engine in a child process on its own
// core, on kernel UDP sockets on 127.0.0.1; the load generator is nimbus's
// own initiator in the parent, each site with its own certificate and its
// own source address in 127.1.0.0/16 (so the per-source half-open limit
// applies as it would to real sites). Certificates: a P-521 CA with a CRL,
// a P-384 concentrator certificate, N P-384 site certificates, minted in
// memory before the clock starts. Every handshake is IKE_SA_INIT + IKE_AUTH
// with RFC 7427 ECDSA signatures and chain + CRL validation on both sides.
//
// The bound (issue 4): 1 / (2·X25519 + P-384 sign + P-384 verify + P-521
// verify), each cost from `openssl speed ecdsap384 ecdsap521 ecdhx25519` run
// in the same invocation. Output: JSON lines
//   {"bench":"ike","phase":"openssl",...,"bound_hs_per_s":B}
//   {"bench":"ike","phase":"pk_path",...}: our own sign/verify/chain calls in a loop, against the above
//   {"bench":"ike","phase":"rate_round","round":i,...,"ratio_to_strict_bound":...}: K rounds, each
//       next to the faster of the bounds measured right before and right after it
//   {"bench":"ike","phase":"rate","hs_per_s":R,...,"median_round_ratio_to_strict_bound":...,"pass":...}
//   {"bench":"ike","phase":"storm","sites":N,"seconds":T,"all_up":...,"limit_seconds":1.5*N/B,...}
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "control/ike/auth.h"
#include "control/ike/engine.h"
#include "control/ike/logging_sink.h"
#include "control/ike/proposal.h"
#include "control/ike/udp.h"
#include "control/pki/pki.h"
#include "src/common/clock.h"
#include "src/common/log.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

constexpr uint16_t kConcPort = 17500;   // concentrator: 17500/17501 on 127.0.0.1
constexpr uint16_t kGenPort = 18500;    // generator: 18500/18501, wildcard

struct Opts {
    double seconds = 3;  // per round
    int rounds = 3;
    int concurrency = 32;
    int sites = 10000;
    bool storm = true;
};

// ---- certificates in memory

EVP_PKEY* keygen(const char* curve) { return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve); }

X509* make_cert(EVP_PKEY* subject_key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, long serial,
                bool ca) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
    X509_set_pubkey(x, subject_key);
    X509_NAME* n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("nimbus-bench"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509_NAME_free(n);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
    auto ext = [&](int nid, const char* v) {
        X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, v);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    };
    ext(NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    ext(NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    X509_sign(x, issuer_key, EVP_sha256());
    return x;
}

bool write_pem(const std::string& path, X509* x, X509_CRL* crl) {
    FILE* f = fopen(path.c_str(), "w");
    if (!f) return false;
    bool ok = x ? PEM_write_X509(f, x) : PEM_write_X509_CRL(f, crl);
    fclose(f);
    return ok;
}

struct BenchPki {
    std::string dir;
    std::shared_ptr<const pki::TrustStore> trust;
    std::shared_ptr<const pki::Credential> conc;
    std::vector<std::shared_ptr<const pki::Credential>> sites;
};

bool make_pki(int n, BenchPki* out, std::string* err) {
    char tmpl[] = "/tmp/nimbus-bench-ike-XXXXXX";
    if (!mkdtemp(tmpl)) {
        *err = "mkdtemp";
        return false;
    }
    out->dir = tmpl;
    EVP_PKEY* ca_key = keygen("P-521");
    X509* ca = make_cert(ca_key, "Bench Root CA", nullptr, ca_key, 1, true);
    X509_CRL* crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    ASN1_TIME* t1 = X509_time_adj_ex(nullptr, -1, 0, nullptr);
    ASN1_TIME* t2 = X509_time_adj_ex(nullptr, 30, 0, nullptr);
    X509_CRL_set1_lastUpdate(crl, t1);
    X509_CRL_set1_nextUpdate(crl, t2);
    X509_CRL_sign(crl, ca_key, EVP_sha256());
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    if (!write_pem(out->dir + "/ca.crt", ca, nullptr) || !write_pem(out->dir + "/ca.crl", nullptr, crl)) {
        *err = "cannot write the CA";
        return false;
    }
    X509_CRL_free(crl);
    out->trust = pki::TrustStore::load(out->dir + "/ca.crt", out->dir + "/ca.crl", err);
    if (!out->trust) return false;
    EVP_PKEY* ck = keygen("P-384");
    X509* cc = make_cert(ck, "conc.bench", ca, ca_key, 2, false);
    out->conc = pki::Credential::adopt({pki::Certificate::adopt(cc)}, ck);
    // One P-384 key for all sites (minting 10,000 keys would only slow the
    // set-up; each site still has its own certificate and identity).
    EVP_PKEY* sk = keygen("P-384");
    for (int i = 0; i < n; i++) {
        X509* sc = make_cert(sk, fmt::format("bench-{:05}", i), ca, ca_key, 100 + i, false);
        EVP_PKEY_up_ref(sk);
        out->sites.push_back(pki::Credential::adopt({pki::Certificate::adopt(sc)}, sk));
    }
    EVP_PKEY_free(sk);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    if (!out->conc || out->sites.size() != size_t(n)) {
        *err = "credential set-up failed";
        return false;
    }
    return true;
}

Prefix site_prefix(int i) { return Prefix(IpAddr::v4(0x0a000000u | uint32_t(1 + i / 256) << 16 | uint32_t(i % 256) << 8), 24); }
IpAddr site_addr(int i) { return IpAddr::v4(0x7f010000u + uint32_t(i) + 1); }  // 127.1.0.1 ...

std::shared_ptr<CloudPolicy> bench_cloud(const BenchPki& p, int nsites, bool conc) {
    auto c = std::make_shared<CloudPolicy>();
    c->name = "bench";
    std::string err;
    c->ike.push_back(*parse_proposal("aes256gcm16-prfsha256-x25519", PROTO_IKE, &err));
    c->esp.push_back(*parse_proposal("aes256gcm16", PROTO_ESP, &err));
    c->trust = p.trust;
    if (conc) c->cred = p.conc;
    c->advertise = {*Prefix::parse("172.16.0.0/12")};
    c->dpd_interval_s = 3600;   // liveness traffic is not what is measured
    c->dpd_retries = 3;
    if (conc)
        for (int i = 0; i < nsites; i++) {
            SitePolicy s;
            s.name = fmt::format("CN=bench-{:05}", i);
            std::string e;
            s.id = *pki::parse_identity(s.name, &e);
            s.prefixes = {site_prefix(i)};
            c->sites.push_back(std::move(s));
        }
    index_sites(*c);
    return c;
}

// ---- the concentrator (child process)

[[noreturn]] void run_concentrator(const BenchPki& p, int nsites, int ctl, int result) {
    UdpTransport udp;
    std::string err;
    if (!udp.open({*IpAddr::parse("127.0.0.1")}, kConcPort, kConcPort + 1, &err)) {
        fmt::print(stderr, "nimbus-bench: concentrator sockets: {}\n", err);
        _exit(1);
    }
    Policy pol;
    pol.clouds.push_back(bench_cloud(p, nsites, true));
    pol.settings.port_ike = kConcPort;
    pol.settings.port_natt = kConcPort + 1;
    LoggingSink sink(false);
    Engine e(std::move(pol), udp, sink, [] { return mono_ns(); });
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int fd : udp.fds()) {
        epoll_event ev{EPOLLIN, {.fd = fd}};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    epoll_event cev{EPOLLIN, {.fd = ctl}};
    epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &cev);
    char ready = 'r';
    if (write(result, &ready, 1) != 1) _exit(1);
    for (;;) {
        uint64_t next = e.next_timer(), now = mono_ns();
        int timeout = next == std::numeric_limits<uint64_t>::max() ? 1000
                      : next <= now                                  ? 0
                                                                     : int(std::min<uint64_t>((next - now) / 1000000 + 1, 1000));
        epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, timeout);
        bool stop = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == ctl) {
                stop = true;
                continue;
            }
            std::vector<UdpTransport::Datagram> got;
            std::vector<Engine::Datagram> batch;
            udp.read_batch(evs[i].data.fd, &got);
            for (auto& g : got) batch.push_back(Engine::Datagram{g.local, g.remote, g.data});
            e.receive_batch(batch);
        }
        if (e.next_timer() <= mono_ns()) e.on_timer();
        if (stop) break;
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    pki::PeerCheckStats pcs = pki::peer_check_stats();
    std::string out = fmt::format("{} {} {} {} {} {} {}\n", cpu, e.counter(Counter::auth_ok),
                                  e.counter(Counter::cookies_sent), e.counter(Counter::half_open_source_limit),
                                  e.counter(Counter::rx_retransmits), pcs.direct, pcs.full);
    if (write(result, out.data(), out.size()) < 0) _exit(1);
    _exit(0);
}

// With two or more CPUs the concentrator gets the last one to itself and
// the generator the others, and the bound is measured on the
// concentrator's CPU: the two sides do the same public-key work and would
// otherwise compete for the same core, which made the ratios swing with
// the scheduler (0.40 to 0.84 between runs).
int g_conc_cpu = -1;

void pin_to(int first, int last) {
    if (first < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = first; c <= last; c++) CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
}

struct ConcStats {
    bool crashed = false;
    double cpu = 0;
    uint64_t auth_ok = 0, cookies = 0, source_limit = 0, retransmits = 0;
    uint64_t cert_direct = 0, cert_full = 0;  // pki::peer_check_stats()
};

struct ConcProc {
    pid_t pid = -1;
    int ctl = -1, result = -1;

    bool start(const BenchPki& p, int nsites, double cpu_warmup_excluded) {
        (void)cpu_warmup_excluded;
        int c[2], r[2];
        if (pipe(c) != 0 || pipe(r) != 0) return false;
        pid = fork();
        if (pid == 0) {
            close(c[1]);
            close(r[0]);
            pin_to(g_conc_cpu, g_conc_cpu);
            run_concentrator(p, nsites, c[0], r[1]);
        }
        close(c[0]);
        close(r[1]);
        ctl = c[1];
        result = r[0];
        char x;
        return read(result, &x, 1) == 1;
    }
    ConcStats stop() {
        close(ctl);
        std::string s;
        char buf[256];
        ssize_t n;
        while ((n = read(result, buf, sizeof buf)) > 0) s.append(buf, size_t(n));
        close(result);
        int st = 0;
        waitpid(pid, &st, 0);
        ConcStats cs;
        cs.crashed = WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0);
        sscanf(s.c_str(), "%lf %lu %lu %lu %lu %lu %lu", &cs.cpu, &cs.auth_ok, &cs.cookies, &cs.source_limit,
               &cs.retransmits, &cs.cert_direct, &cs.cert_full);
        return cs;
    }
};

// ---- the load generator (this process)

struct Generator {
    UdpTransport udp;
    LoggingSink sink{false};
    std::unique_ptr<Engine> e;
    int ep = -1;

    bool open(const BenchPki& p, int nsites, std::string* err) {
        if (!udp.open({}, kGenPort, kGenPort + 1, err)) return false;
        Policy pol;
        pol.clouds.push_back(bench_cloud(p, 0, false));
        pol.settings.port_ike = kGenPort;
        pol.settings.port_natt = kGenPort + 1;
        // Like a strongSwan site: patient retransmissions.
        pol.settings.retransmit_timeout_ns = 2'000'000'000ull;
        pol.settings.retransmit_tries = 8;
        for (int i = 0; i < nsites; i++) {
            InitiatePolicy in;
            in.peer = *IpAddr::parse("127.0.0.1");
            in.peer_port = kConcPort;
            in.local = site_addr(i);
            in.cloud = "bench";
            in.cred = p.sites[size_t(i)];
            in.local_prefixes = {site_prefix(i)};
            in.remote_prefixes = {*Prefix::parse("172.16.0.0/12")};
            pol.initiate.push_back(std::move(in));
        }
        e = std::make_unique<Engine>(std::move(pol), udp, sink, [] { return mono_ns(); });
        ep = epoll_create1(EPOLL_CLOEXEC);
        for (int fd : udp.fds()) {
            epoll_event ev{EPOLLIN, {.fd = fd}};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        return true;
    }
    void poll(int max_ms) {
        uint64_t next = e->next_timer(), now = mono_ns();
        int timeout = next <= now ? 0 : int(std::min<uint64_t>((next - now) / 1000000 + 1, uint64_t(max_ms)));
        epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, timeout);
        // Like the concentrator, through the engine's work queue: the
        // generator stands for thousands of sites with a socket each, and
        // must not lose answers in one shared socket buffer while it signs.
        std::vector<UdpTransport::Datagram> got;
        std::vector<Engine::Datagram> batch;
        for (int i = 0; i < n; i++) {
            udp.read_batch(evs[i].data.fd, &got);
            batch.clear();
            for (auto& g : got) batch.push_back(Engine::Datagram{g.local, g.remote, g.data});
            e->receive_batch(batch);
        }
        if (e->next_timer() <= mono_ns()) e->on_timer();
    }
    uint64_t up() const { return e->counter(Counter::ike_established); }
    ~Generator() {
        e.reset();
        if (ep >= 0) close(ep);
    }
};

// ---- openssl speed

struct Speed {
    double x25519_us = 0, p384_sign_us = 0, p384_verify_us = 0, p521_verify_us = 0;
    double bound() const { return 1e6 / (2 * x25519_us + p384_sign_us + p384_verify_us + p521_verify_us); }
};

// On the concentrator's own CPU, as the concentrator will run.
bool openssl_speed(Speed* s, std::string* err) {
    std::string cmd = "openssl speed -seconds 1 ecdsap384 ecdsap521 ecdhx25519 2>/dev/null";
    if (g_conc_cpu >= 0) cmd = fmt::format("taskset -c {} {}", g_conc_cpu, cmd);
    FILE* f = popen(cmd.c_str(), "r");
    if (!f) {
        *err = "cannot run openssl speed";
        return false;
    }
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
    std::smatch m;
    std::regex p384(R"(384 bits ecdsa \(nistp384\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+))");
    std::regex p521(R"(521 bits ecdsa \(nistp521\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+))");
    std::regex x25519(R"(ecdh \(X25519\)\s+\S+s\s+([\d.]+))");
    if (!std::regex_search(out, m, p384)) return *err = "no P-384 line in openssl speed output", false;
    s->p384_sign_us = 1e6 / std::stod(m[1]);
    s->p384_verify_us = 1e6 / std::stod(m[2]);
    if (!std::regex_search(out, m, p521)) return *err = "no P-521 line in openssl speed output", false;
    s->p521_verify_us = 1e6 / std::stod(m[2]);
    if (!std::regex_search(out, m, x25519)) return *err = "no X25519 line in openssl speed output", false;
    s->x25519_us = 1e6 / std::stod(m[1]);
    return true;
}

}  // namespace

int ike_bench(int argc, char** argv) {
    Opts o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--seconds") o.seconds = std::stod(next());
        else if (a == "--rounds") o.rounds = std::max(1, std::stoi(next()));
        else if (a == "--concurrency") o.concurrency = std::stoi(next());
        else if (a == "--sites") o.sites = std::stoi(next());
        else if (a == "--no-storm") o.storm = false;
        else {
            fmt::print(stderr, "usage: nimbus-bench ike [--seconds S] [--rounds K] [--concurrency C] [--sites N] [--no-storm]\n");
            return 2;
        }
    }
    log::set_level(getenv("NIMBUS_BENCH_LOG") ? log::Level::Info : log::Level::Error);
    std::string err;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu >= 2) {
        g_conc_cpu = int(ncpu - 1);
        pin_to(0, g_conc_cpu - 1);
    }
    Speed sp;
    if (!openssl_speed(&sp, &err)) {
        fmt::print(stderr, "nimbus-bench: {}\n", err);
        return 1;
    }
    double bound = sp.bound();
    fmt::print("{{\"bench\":\"ike\",\"phase\":\"openssl\",\"x25519_us\":{:.1f},\"p384_sign_us\":{:.1f},"
               "\"p384_verify_us\":{:.1f},\"p521_verify_us\":{:.1f},\"bound_hs_per_s\":{:.1f}}}\n",
               sp.x25519_us, sp.p384_sign_us, sp.p384_verify_us, sp.p521_verify_us, bound);
    fflush(stdout);
    BenchPki pki;
    uint64_t t0 = mono_ns();
    if (!make_pki(o.sites, &pki, &err)) {
        fmt::print(stderr, "nimbus-bench: {}\n", err);
        return 1;
    }
    double mint_s = double(mono_ns() - t0) / 1e9;
    {
        // What a reconnecting site's certificate costs to parse: OpenSSL's
        // d2i_X509 (cache off) against pki::Certificate::from_der's cache.
        std::vector<uint8_t> der = pki.sites[0]->cert().der();
        auto per_parse_us = [&](int n) {
            uint64_t a = mono_ns();
            for (int i = 0; i < n; i++)
                if (!pki::Certificate::from_der(der)) return -1.0;
            return double(mono_ns() - a) / 1e3 / n;
        };
        pki::set_cert_cache_limit(0);
        double cold = per_parse_us(300);
        pki::set_cert_cache_limit(4096);
        per_parse_us(1);
        double warm = per_parse_us(3000);
        // A new site's whole certificate check (chain signature, CRL,
        // identity, its key): TrustStore::check_peer's direct path against
        // OpenSSL's (d2i_X509 uncached + X509_verify_cert).
        std::vector<std::span<const uint8_t>> ders{der};
        pki::Identity who = pki.sites[0]->cert().subject();
        auto per_check_us = [&](int n) {
            uint64_t a = mono_ns();
            pki::PeerRefusal no;
            for (int i = 0; i < n; i++)
                if (!pki.trust->check_peer(ders, who, &no)) return -1.0;
            return double(mono_ns() - a) / 1e3 / n;
        };
        pki::PeerCheckStats before = pki::peer_check_stats();
        double direct = per_check_us(100);
        bool was_direct = pki::peer_check_stats().direct == before.direct + 100;
        pki::set_cert_cache_limit(0);
        double full = per_parse_us(100);
        uint64_t a = mono_ns();
        for (int i = 0; i < 100; i++)
            if (!pki.trust->verify(pki.sites[0]->cert(), {}).ok) full = -1e9;
        full += double(mono_ns() - a) / 1e3 / 100;
        pki::set_cert_cache_limit(0);  // the concentrator starts cold, like a fresh nimbusd
        pki::set_cert_cache_limit(4096);
        fmt::print("{{\"bench\":\"ike\",\"phase\":\"cert_parse\",\"d2i_x509_us\":{:.1f},\"cached_us\":{:.3f},"
                   "\"cert_bytes\":{},\"check_direct_us\":{:.1f},\"check_openssl_us\":{:.1f},\"direct_used\":{}}}\n",
                   cold, warm, der.size(), direct, full, was_direct ? "true" : "false");
        fflush(stdout);
    }

    {
        // The concentrator's own calls for the bound's operations, in a
        // loop on this core: what nimbus's code path adds to `openssl
        // speed` (EVP contexts, DER signature handling, the X509 store
        // context), apart from what a handshake does around them.
        std::vector<uint8_t> msg(600, 0x5a);  // about an IKE_AUTH's signed octets
        auto per_op_us = [](auto fn, int n) {
            uint64_t a = mono_ns();
            for (int i = 0; i < n; i++)
                if (!fn()) return -1.0;
            return double(mono_ns() - a) / 1e3 / n;
        };
        std::vector<uint8_t> sig;
        const uint16_t hashes[] = {HASH_SHA2_384};
        double sign = per_op_us([&] {
            auto s = auth_sign(AUTH_DIGITAL_SIGNATURE, pki.conc->key(), HASH_SHA2_384, msg);
            if (s) sig = std::move(*s);
            return s.has_value();
        }, 200);
        double verify = per_op_us([&] {
            return auth_verify(AUTH_DIGITAL_SIGNATURE, pki.conc->cert().public_key(), sig, msg, hashes) ==
                   AuthStatus::Ok;
        }, 200);
        double chain = per_op_us([&] { return pki.trust->verify(pki.sites[0]->cert(), {}).ok; }, 200);
        if (sign < 0 || verify < 0 || chain < 0) {
            fmt::print(stderr, "nimbus-bench: the concentrator's sign/verify/chain check failed\n");
            return 1;
        }
        fmt::print("{{\"bench\":\"ike\",\"phase\":\"pk_path\",\"p384_sign_us\":{:.1f},\"p384_verify_us\":{:.1f},"
                   "\"chain_p521_verify_us\":{:.1f},\"ratio_to_speed\":{:.3f}}}\n",
                   sign, verify, chain,
                   (sign + verify + chain) / (sp.p384_sign_us + sp.p384_verify_us + sp.p521_verify_us));
        fflush(stdout);
    }
    double rate_hs = 0, rate_per_cpu = 0, storm_s = -1, rate_strict = 0, bound_max = bound;
    bool storm_all = false;
    // Phase 1: handshakes per second with C in flight, in K rounds of S
    // seconds. The bound is measured on the concentrator's CPU right before
    // and right after each round, with the concentrator idle, and each
    // round is held to the faster of its two: on this shared machine the
    // speed of a core moves by a quarter within a minute, and a bound taken
    // half a minute away from the load measured something else. The verdict
    // is the median round.
    {
        ConcProc conc;
        if (!conc.start(pki, o.sites, 0)) {
            fmt::print(stderr, "nimbus-bench: concentrator did not start\n");
            return 1;
        }
        Generator g;
        if (!g.open(pki, o.sites, &err)) {
            fmt::print(stderr, "nimbus-bench: generator: {}\n", err);
            conc.stop();
            return 1;
        }
        Speed before;
        if (!openssl_speed(&before, &err)) {
            fmt::print(stderr, "nimbus-bench: {}\n", err);
            conc.stop();
            return 1;
        }
        size_t started = 0;
        uint64_t done = 0;
        double secs = 0;
        std::vector<double> strict;
        for (int round = 0; round < o.rounds && started < size_t(o.sites); round++) {
            uint64_t warm = uint64_t(0.5e9), dur = uint64_t(o.seconds * 1e9);
            uint64_t begin = mono_ns(), t_start = 0, up_start = 0;
            // The warm-up ends after 0.5 s, or sooner once a third of the
            // sites still to come are up: with few sites (the smoke test's
            // 300) half a second could use them all and leave the measured
            // window empty.
            const size_t up0 = g.up(), left = size_t(o.sites) - up0;
            while (true) {
                uint64_t now = mono_ns();
                if (!t_start && (now - begin >= warm || g.up() - up0 >= left / 3)) {
                    t_start = now;
                    up_start = g.up();
                }
                if (t_start && now - t_start >= dur) break;
                while (started < size_t(o.sites) && started - g.up() < size_t(o.concurrency))
                    g.e->initiate_entry(started++);
                if (started >= size_t(o.sites) && g.up() >= started) break;
                g.poll(5);
            }
            uint64_t t_end = mono_ns();
            if (!t_start) t_start = t_end, up_start = g.up();
            uint64_t n = g.up() - up_start;
            double s_round = double(t_end - t_start) / 1e9;
            // Let the handshakes in flight finish (bounded) so that the
            // concentrator is idle while the bound is measured.
            for (uint64_t d0 = mono_ns(); g.up() < started && mono_ns() - d0 < uint64_t(10e9);) g.poll(5);
            Speed after;
            if (!openssl_speed(&after, &err)) {
                fmt::print(stderr, "nimbus-bench: {}\n", err);
                conc.stop();
                return 1;
            }
            double r = s_round > 0 ? double(n) / s_round : 0;
            double b = std::max(before.bound(), after.bound());
            bound_max = std::max(bound_max, b);
            strict.push_back(b > 0 ? r / b : 0);
            fmt::print("{{\"bench\":\"ike\",\"phase\":\"rate_round\",\"round\":{},\"handshakes\":{},\"seconds\":{:.2f},"
                       "\"hs_per_s\":{:.1f},\"bound_before\":{:.1f},\"bound_after\":{:.1f},"
                       "\"ratio_to_strict_bound\":{:.3f}}}\n",
                       round + 1, n, s_round, r, before.bound(), after.bound(), strict.back());
            fflush(stdout);
            done += n;
            secs += s_round;
            before = after;
        }
        ConcStats cs = conc.stop();
        double rate = secs > 0 ? double(done) / secs : 0;
        double per_cpu = cs.cpu > 0 ? double(cs.auth_ok) / cs.cpu : 0;
        std::sort(strict.begin(), strict.end());
        rate_strict = strict.empty() ? 0 : strict[strict.size() / 2];
        rate_hs = rate;
        rate_per_cpu = per_cpu;
        fmt::print("{{\"bench\":\"ike\",\"phase\":\"rate\",\"handshakes\":{},\"seconds\":{:.2f},\"hs_per_s\":{:.1f},"
                   "\"conc_auth_ok\":{},\"conc_cpu_s\":{:.2f},\"hs_per_conc_cpu_s\":{:.1f},\"bound_hs_per_s\":{:.1f},"
                   "\"ratio_to_bound\":{:.3f},\"cpu_ratio_to_bound\":{:.3f},\"rounds\":{},"
                   "\"median_round_ratio_to_strict_bound\":{:.3f},"
                   "\"target\":0.8,\"pass\":{},"
                   "\"concurrency\":{},\"mint_s\":{:.1f},\"conc_cert_direct\":{},\"conc_cert_full\":{}}}\n",
                   done, secs, rate, cs.auth_ok, cs.cpu, per_cpu, bound, rate / bound, per_cpu / bound, strict.size(),
                   rate_strict, rate_strict >= 0.8 ? "true" : "false", o.concurrency, mint_s, cs.cert_direct,
                   cs.cert_full);
        fflush(stdout);
    }

    // Phase 2: every site at once.
    if (o.storm) {
        ConcProc conc;
        if (!conc.start(pki, o.sites, 0)) return 1;
        Generator g;
        if (!g.open(pki, o.sites, &err)) {
            conc.stop();
            return 1;
        }
        double limit = 1.5 * double(o.sites) / bound;
        rusage r0{};
        getrusage(RUSAGE_SELF, &r0);
        uint64_t begin = mono_ns();
        g.e->start();
        double marks[4] = {0, 0, 0, 0};  // 50, 90, 99, 100 %
        const double fr[4] = {0.5, 0.9, 0.99, 1.0};
        while (g.up() < size_t(o.sites) && double(mono_ns() - begin) / 1e9 < 3 * limit + 30) {
            g.poll(5);
            for (int k = 0; k < 4; k++)
                if (!marks[k] && double(g.up()) >= fr[k] * o.sites) marks[k] = double(mono_ns() - begin) / 1e9;
        }
        double secs = double(mono_ns() - begin) / 1e9;
        rusage r1{};
        getrusage(RUSAGE_SELF, &r1);
        auto cpu = [](const rusage& r) {
            return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
        };
        double gen_cpu = cpu(r1) - cpu(r0);
        uint64_t up = g.up();
        storm_s = secs;
        storm_all = up == size_t(o.sites);
        ConcStats cs = conc.stop();
        bool crashed = cs.crashed;
        fmt::print("{{\"bench\":\"ike\",\"phase\":\"storm\",\"sites\":{},\"up\":{},\"all_up\":{},\"seconds\":{:.2f},"
                   "\"bound_seconds\":{:.2f},\"limit_seconds\":{:.2f},\"cookies_sent\":{},\"source_limit_drops\":{},"
                   "\"conc_retransmits_answered\":{},\"conc_cpu_s\":{:.2f},\"gen_cpu_s\":{:.2f},"
                   "\"t50_s\":{:.2f},\"t90_s\":{:.2f},\"t99_s\":{:.2f},\"crashed\":{},\"pass\":{}}}\n",
                   o.sites, up, up == size_t(o.sites) ? "true" : "false", secs, double(o.sites) / bound, limit,
                   cs.cookies, cs.source_limit, cs.retransmits, cs.cpu, gen_cpu, marks[0], marks[1], marks[2],
                   crashed ? "true" : "false",
                   up == size_t(o.sites) && secs <= limit && cs.cookies > 0 && !crashed ? "true" : "false");
    }
    // The bound again, after the load: the machine is shared, and the
    // stricter (faster) of the two measurements is the one to hold the
    // engine to.
    Speed after;
    if (openssl_speed(&after, &err)) {
        // The storm is held to the faster of the bounds around the whole
        // run; the rate to its median round (above), and also, overall, to
        // the fastest bound measured at all.
        double strict = std::max(bound, after.bound());
        double fastest = std::max(bound_max, after.bound());
        fmt::print("{{\"bench\":\"ike\",\"phase\":\"summary\",\"conc_cpu\":{},\"bound_before\":{:.1f},"
                   "\"bound_after\":{:.1f},\"bound_strict\":{:.1f},\"ratio_to_strict_bound\":{:.3f},"
                   "\"rate_over_fastest_bound\":{:.3f},\"cpu_ratio_to_fastest_bound\":{:.3f},\"rate_pass\":{},"
                   "\"storm_seconds\":{:.2f},\"storm_all_up\":{},"
                   "\"storm_limit_strict_seconds\":{:.2f},\"storm_within_strict_limit\":{}}}\n",
                   g_conc_cpu, bound, after.bound(), strict, rate_strict, rate_hs / fastest, rate_per_cpu / fastest,
                   rate_strict >= 0.8 ? "true" : "false", storm_s, storm_all ? "true" : "false",
                   1.5 * double(o.sites) / strict,
                   storm_all && storm_s >= 0 && storm_s <= 1.5 * double(o.sites) / strict ? "true" : "false");
    }
    std::string rm = "rm -rf " + pki.dir;
    if (system(rm.c_str()) != 0) fmt::print(stderr, "nimbus-bench: could not remove {}\n", pki.dir);
    return 0;
}
