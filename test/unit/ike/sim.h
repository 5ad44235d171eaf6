// An in-memory network and clock for IKE engine tests: engines exchange
// datagrams through a queue the test pumps, time moves only when the test
// says so, and a filter can drop, rewrite (NAT) or inspect every datagram.
// An invariant hook runs after each delivered datagram (the tests use it to
// prove that no packet could be lost across a rekey).
#pragma once

#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/ike/engine.h"
#include "control/ike/logging_sink.h"
#include "control/ike/proposal.h"
#include "control/pki/identity.h"
#include "control/pki/pki.h"

namespace sim {

using namespace nimbus;
using namespace nimbus::ike;

struct Datagram {
    Endpoint from, to;
    std::vector<uint8_t> data;
};

class Net;

class SimTransport : public Transport {
public:
    SimTransport(Net& n, IpAddr a) : net_(n), addr_(a) {}
    bool send(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> payload) override;
    std::optional<IpAddr> source_for(const IpAddr&) override { return addr_; }
    void set_addr(IpAddr a) { addr_ = a; }

private:
    Net& net_;
    IpAddr addr_;
};

struct Node {
    std::string name;
    IpAddr addr;
    LoggingSink sink{false};
    std::unique_ptr<SimTransport> tr;
    std::unique_ptr<Engine> eng;
};

class Net {
public:
    uint64_t now = 1'000'000'000ull;
    uint64_t tick = 0;                      // added to `now` at every clock read (time that work takes)
    std::deque<Datagram> q;
    std::vector<Datagram> log;             // everything delivered
    std::function<bool(Datagram&)> filter;  // false: drop (may rewrite)
    std::function<void()> invariant;
    size_t mtu = 0;                          // IP packet limit; 0 = none
    uint64_t delivered = 0, dropped = 0, too_big = 0;
    std::map<IpAddr, Node*> hosts;

    Node& add(const std::string& name, const char* addr, Policy p) {
        auto n = std::make_unique<Node>();
        n->name = name;
        n->addr = *IpAddr::parse(addr);
        n->tr = std::make_unique<SimTransport>(*this, n->addr);
        n->eng = std::make_unique<Engine>(std::move(p), *n->tr, n->sink, [this] { return now += tick; });
        Node& r = *n;
        hosts[r.addr] = &r;
        nodes_.push_back(std::move(n));
        return r;
    }
    void alias(const char* addr, Node& n) { hosts[*IpAddr::parse(addr)] = &n; }
    void remove(Node& n) {
        for (auto it = hosts.begin(); it != hosts.end();)
            it = it->second == &n ? hosts.erase(it) : std::next(it);
        for (auto it = nodes_.begin(); it != nodes_.end(); ++it)
            if (it->get() == &n) {
                nodes_.erase(it);
                break;
            }
    }

    void pump(int max = 100000) {
        while (!q.empty() && max-- > 0) {
            Datagram d = std::move(q.front());
            q.pop_front();
            if (filter && !filter(d)) {
                dropped++;
                continue;
            }
            size_t ip = d.to.addr.is_v4() ? 28 : 48;
            if (mtu && d.data.size() + ip > mtu) {
                too_big++;
                continue;
            }
            auto it = hosts.find(d.to.addr);
            if (it == hosts.end()) {
                dropped++;
                continue;
            }
            delivered++;
            log.push_back(d);
            it->second->eng->receive(d.to, d.from, d.data);
            if (invariant) invariant();
        }
    }

    // Moves time forward to `now + ns`, firing every engine's timers in
    // order and delivering what they send.
    void advance(uint64_t ns) {
        uint64_t target = now + ns;
        pump();
        for (;;) {
            uint64_t next = std::numeric_limits<uint64_t>::max();
            for (auto& n : nodes_) next = std::min(next, n->eng->next_timer());
            if (next > target) break;
            if (next > now) now = next;
            for (auto& n : nodes_)
                if (n->eng->next_timer() <= now) n->eng->on_timer();
            pump();
        }
        now = target;
    }
    void advance_s(double s) { advance(uint64_t(s * 1e9)); }

private:
    std::vector<std::unique_ptr<Node>> nodes_;
};

inline bool SimTransport::send(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> payload) {
    net_.q.push_back(Datagram{local, remote, std::vector<uint8_t>(payload.begin(), payload.end())});
    return true;
}

// ---- policies

inline Proposal prop(const char* s, uint8_t proto) {
    std::string err;
    auto p = parse_proposal(s, proto, &err);
    if (!p) throw std::runtime_error(err);
    return *p;
}

inline pki::Identity ident(const char* s) {
    std::string err;
    auto i = pki::parse_identity(s, &err);
    if (!i) throw std::runtime_error(err);
    return *i;
}

inline Secret secret(const char* s) {
    return Secret(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s), strlen(s)));
}

struct CloudOpts {
    std::vector<const char*> ike = {"aes256gcm16-prfsha256-x25519"};
    std::vector<const char*> esp = {"aes256gcm16-x25519"};
    std::vector<const char*> advertise = {"10.0.0.0/8"};
    const char* psk = "lab-psk-0123456789abcdef";
    std::string ca, crl, cert, key;   // PKI files; empty: PSK
    uint32_t dpd_interval = 10, dpd_retries = 3;
    uint32_t rekey_ike = 14400, rekey_child = 3600;
    const char* local_id = nullptr;
};

struct SiteOpts {
    const char* id;
    std::vector<const char*> prefixes;
};

inline std::shared_ptr<CloudPolicy> cloud(const CloudOpts& o, std::vector<SiteOpts> sites = {}) {
    auto c = std::make_shared<CloudPolicy>();
    c->name = "corp";
    c->vrf = 1;
    for (auto s : o.ike) c->ike.push_back(prop(s, PROTO_IKE));
    for (auto s : o.esp) c->esp.push_back(prop(s, PROTO_ESP));
    for (auto s : o.advertise) c->advertise.push_back(*Prefix::parse(s));
    c->dpd_interval_s = o.dpd_interval;
    c->dpd_retries = o.dpd_retries;
    c->rekey_ike_s = o.rekey_ike;
    c->rekey_child_s = o.rekey_child;
    if (o.local_id) c->local_id = ident(o.local_id);
    std::string err;
    if (!o.ca.empty()) {
        c->trust = pki::TrustStore::load(o.ca, o.crl, &err);
        if (!c->trust) throw std::runtime_error(err);
    }
    if (!o.cert.empty()) {
        c->cred = pki::Credential::load(o.cert, o.key, &err);
        if (!c->cred) throw std::runtime_error(err);
    }
    if (o.ca.empty() && o.psk) c->psk = secret(o.psk);
    for (auto& s : sites) {
        SitePolicy sp;
        sp.name = s.id;
        sp.id = ident(s.id);
        for (auto p : s.prefixes) sp.prefixes.push_back(*Prefix::parse(p));
        c->sites.push_back(std::move(sp));
    }
    index_sites(*c);
    return c;
}

inline Policy concentrator(std::shared_ptr<CloudPolicy> c, EngineSettings st = {}) {
    Policy p;
    p.settings = st;
    p.clouds.push_back(std::move(c));
    return p;
}

inline Policy edge(std::shared_ptr<CloudPolicy> c, const char* peer, const char* local_id,
                   std::vector<const char*> local_prefixes, std::vector<const char*> remote_prefixes = {"10.0.0.0/8"},
                   EngineSettings st = {}) {
    Policy p;
    p.settings = st;
    InitiatePolicy in;
    in.peer = *IpAddr::parse(peer);
    in.cloud = c->name;
    if (local_id) in.local_id = ident(local_id);
    for (auto x : local_prefixes) in.local_prefixes.push_back(*Prefix::parse(x));
    for (auto x : remote_prefixes) in.remote_prefixes.push_back(*Prefix::parse(x));
    p.initiate.push_back(std::move(in));
    p.clouds.push_back(std::move(c));
    return p;
}

// The tunnel of a node that is up (the first one), or nullptr.
inline const LoggingSink::Tun* up_tunnel(const Node& n) {
    for (auto& [id, t] : n.sink.tunnels())
        if (!t.children.empty()) return &t;
    return nullptr;
}

// Every outbound SA in use on `a` has its inbound twin installed on `b`
// with the same keys: a packet sent now would be accepted.
inline bool outbound_receivable(const Node& a, const Node& b) {
    for (auto& [id, t] : a.sink.tunnels()) {
        if (!t.active_out) continue;
        auto& c = t.children.at(t.active_out);
        bool ok = false;
        for (auto& [id2, t2] : b.sink.tunnels())
            for (auto& [spi, c2] : t2.children)
                if (spi == c.spi_out && c2.key_in_tag == c.key_out_tag) ok = true;
        if (!ok) return false;
    }
    return true;
}

}  // namespace sim
