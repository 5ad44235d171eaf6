#include "control/ike/service.h"

#include <sys/epoll.h>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "control/ike/selftest.h"
#include "src/common/clock.h"
#include "src/common/log.h"

namespace nimbus::ike {

namespace {

Secret secret_of(const config::SecretText& s) {
    return Secret(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.value.data()), s.value.size()));
}

std::string at(const config::Config& c, const config::Where& w, const std::string& path) {
    if (!w.line) return fmt::format("{}: {}", c.file, path);
    return fmt::format("{}:{}:{}: {}", c.file, w.line, w.col, path);
}

}  // namespace

bool build_policy(const config::Config& c, Policy* out, std::vector<std::string>* errors) {
    Policy p;
    auto& st = p.settings;
    st.port_ike = uint16_t(c.ike.port_ike);
    st.port_natt = uint16_t(c.ike.port_natt);
    st.cookie_threshold = size_t(c.ike.cookie_threshold);
    st.half_open_per_source = size_t(c.ike.half_open_per_source);
    st.max_half_open = size_t(c.ike.max_half_open);
    st.fragment_size = size_t(c.ike.fragment_size);
    st.retransmit_timeout_ns = uint64_t(c.ike.retransmit_timeout_ms) * 1'000'000ull;
    st.retransmit_tries = c.ike.retransmit_tries;
    st.keepalive_ns = uint64_t(c.ike.keepalive_s) * 1'000'000'000ull;
    bool ok = true;
    for (size_t i = 0; i < c.clouds.size(); i++) {
        const config::Cloud& cc = c.clouds[i];
        auto cp = std::make_shared<CloudPolicy>();
        cp->name = cc.name;
        cp->vrf = c.vrf_index(cc.vrf);
        std::string err;
        for (auto& s : cc.ike_proposals)
            if (auto pr = parse_proposal(s, PROTO_IKE, &err)) cp->ike.push_back(*pr);
        for (auto& s : cc.esp_proposals)
            if (auto pr = parse_proposal(s, PROTO_ESP, &err)) cp->esp.push_back(*pr);
        cp->advertise = cc.advertise;
        cp->dpd_interval_s = uint32_t(cc.dpd.interval);
        cp->dpd_retries = uint32_t(cc.dpd.retries);
        cp->rekey_ike_s = uint32_t(cc.rekey_ike);
        cp->rekey_child_s = uint32_t(cc.rekey_child);
        if (!cc.psk.empty()) cp->psk = secret_of(cc.psk);
        if (!cc.id.empty())
            if (auto id = pki::parse_identity(cc.id, &err)) cp->local_id = *id;
        if (cc.pki) {
            std::string path = fmt::format("clouds[{}].pki", i);
            cp->trust = pki::TrustStore::load(cc.pki->ca, cc.pki->crl, &err);
            if (!cp->trust) {
                errors->push_back(fmt::format("{}: {}", at(c, cc.pki->where, path), err));
                ok = false;
            }
            cp->cred = pki::Credential::load(cc.pki->cert, cc.pki->key, &err);
            if (!cp->cred) {
                errors->push_back(fmt::format("{}: {}", at(c, cc.pki->where, path), err));
                ok = false;
            }
            if (cp->trust && cp->cred && !cp->trust->verify(cp->cred->cert(), cp->cred->chain()).ok)
                LOG_WARN("ike", "event=own_certificate_unverified cloud={} subject=\"{}\" (peers will refuse it)",
                         cc.name, cp->cred->cert().subject_str());
        }
        for (auto& s : cc.sites) {
            SitePolicy sp;
            sp.name = s.id;
            if (auto id = pki::parse_identity(s.id, &err)) sp.id = *id;
            sp.prefixes = s.prefixes;
            if (!s.psk.empty()) sp.psk = secret_of(s.psk);
            sp.critical_dscp = s.critical_dscp;
            cp->sites.push_back(std::move(sp));
        }
        index_sites(*cp);
        p.clouds.push_back(cp);
    }
    for (auto& in : c.initiate) {
        InitiatePolicy ip;
        ip.peer = in.peer;
        ip.cloud = in.cloud;
        std::string err;
        if (!in.local_id.empty())
            if (auto id = pki::parse_identity(in.local_id, &err)) ip.local_id = *id;
        if (!in.remote_id.empty())
            if (auto id = pki::parse_identity(in.remote_id, &err)) ip.remote_id = *id;
        ip.local_prefixes = in.local_prefixes;
        ip.remote_prefixes = in.remote_prefixes;
        p.initiate.push_back(std::move(ip));
    }
    if (ok) *out = std::move(p);
    return ok;
}

Service::Service(control::Loop& loop, ChildSaSink& sink) : loop_(loop), sink_(sink) {}

Service::~Service() { stop(); }

std::vector<IpAddr> Service::listen_addresses(const config::Config& c) const {
    std::vector<IpAddr> v;
    for (auto& l : c.ike.listen) {
        if (auto a = IpAddr::parse(l)) {
            v.push_back(*a);
        } else if (const config::Port* p = c.port(l)) {
            for (auto& ia : p->addresses)
                if (!ia.addr.is_link_local()) v.push_back(ia.addr);
        }
    }
    return v;
}

// The subnets of what `ike.listen` names: a VIP in one of them belongs to a
// listened interface and gets sockets of its own while we are master.
std::vector<Prefix> Service::listen_subnets(const config::Config& c) const {
    std::vector<Prefix> v;
    for (auto& l : c.ike.listen) {
        auto a = IpAddr::parse(l);
        for (auto& p : c.ports)
            for (auto& ia : p.addresses)
                if (ia.addr.is_link_local()) continue;
                else if (a ? ia.addr == *a : p.name == l) v.push_back(ia.subnet());
    }
    return v;
}

void Service::watch(int fd) {
    loop_.add_fd(fd, EPOLLIN, [this, fd](uint32_t) {
        std::vector<UdpTransport::Datagram> got;
        std::vector<Engine::Datagram> batch;
        for (int round = 0; round < 4; round++) {
            size_t n = udp_.read_batch(fd, &got);
            batch.clear();
            for (auto& g : got) batch.push_back(Engine::Datagram{g.local, g.remote, g.data});
            engine_->receive_batch(batch);
            if (n < 64) break;
        }
        rearm();
    });
}

void Service::set_virtual_ips(const std::vector<IpAddr>& vips, bool held, const std::string& why) {
    for (const IpAddr& v : vips) {
        auto was = std::find(vips_held_.begin(), vips_held_.end(), v);
        if (held && was == vips_held_.end()) vips_held_.push_back(v);
        if (!held && was != vips_held_.end()) vips_held_.erase(was);
    }
    if (!engine_) return;
    for (const IpAddr& v : vips) {
        bool own_sockets = std::any_of(listen_subnets_.begin(), listen_subnets_.end(),
                                       [&](const Prefix& p) { return p.contains(v); });
        if (held) {
            if (!own_sockets || udp_.bound_to(v)) continue;
            std::string err;
            auto fds = udp_.add_address(v, ike_cfg_.port_ike, ike_cfg_.port_natt, &err);
            if (fds.empty()) {
                LOG_ERROR("ike", "event=vip_bind_failed vip={} error=\"{}\"", v.str(), err);
                continue;
            }
            for (int fd : fds) watch(fd);
            vip_bound_.push_back(v);
            LOG_INFO("ike", "event=vip_bound vip={} ports={}/{} reason=\"{}\"", v.str(), ike_cfg_.port_ike,
                     ike_cfg_.port_natt, why);
        } else {
            auto fds = udp_.fds_for(v);
            for (int fd : fds) loop_.del_fd(fd);   // out of epoll before they close
            udp_.remove_address(v);
            vip_bound_.erase(std::remove(vip_bound_.begin(), vip_bound_.end(), v), vip_bound_.end());
            size_t n = engine_->drop_local(v, "virtual IP released (HA)");
            if (n || !fds.empty())
                LOG_INFO("ike", "event=vip_released vip={} sockets_closed={} ike_sas_dropped={} reason=\"{}\"",
                         v.str(), fds.size(), n, why);
        }
    }
    rearm();
}

bool Service::start(const config::Config& c, std::string* err) {
    if (c.clouds.empty()) return true;
    // Known-answer tests of every IKE crypto path before we use them.
    std::string failed;
    if (!self_test(&failed)) {
        *err = "IKE crypto self-test failed: " + failed;
        return false;
    }
    Policy p;
    std::vector<std::string> errors;
    if (!build_policy(c, &p, &errors)) {
        *err = errors.front();
        for (size_t i = 1; i < errors.size(); i++) *err += "; " + errors[i];
        return false;
    }
    if (!udp_.open(listen_addresses(c), uint16_t(c.ike.port_ike), uint16_t(c.ike.port_natt), err)) return false;
    ike_cfg_ = c.ike;
    engine_ = std::make_unique<Engine>(std::move(p), udp_, sink_, [] { return mono_ns(); });
    if (offered_) engine_->set_offered(offered_);
    for (int fd : udp_.fds()) watch(fd);
    listen_subnets_ = listen_subnets(c);
    engine_->start();
    rearm();
    samples_.clear();
    sampler_ = loop_.every_ms(1000, [this] {
        if (!engine_) return;
        samples_.emplace_back(mono_ns(), engine_->counter(Counter::ike_established));
        if (samples_.size() > 61) samples_.pop_front();
    });
    LOG_INFO("ike", "event=started clouds={} sites={} initiate={} sockets={} ports={}/{}", c.clouds.size(),
             [&] {
                 size_t n = 0;
                 for (auto& cl : c.clouds) n += cl.sites.size();
                 return n;
             }(),
             c.initiate.size(), udp_.fds().size(), c.ike.port_ike, c.ike.port_natt);
    return true;
}

bool Service::reload(const config::Config& c, std::vector<std::string>* errors, Policy* policy) {
    if (!engine_) {
        if (c.clouds.empty()) return true;
        std::string err;
        if (!start(c, &err)) {
            errors->push_back(err);
            return false;
        }
        return true;
    }
    Policy p;
    if (policy) p = std::move(*policy);
    else if (!build_policy(c, &p, errors)) return false;
    if (!(c.ike.listen == ike_cfg_.listen) || c.ike.port_ike != ike_cfg_.port_ike ||
        c.ike.port_natt != ike_cfg_.port_natt)
        LOG_WARN("ike", "event=reload_partial reason=\"ike.listen and ike.ports take effect after a restart\"");
    engine_->set_policy(std::move(p));
    rearm();
    LOG_INFO("ike", "event=reloaded clouds={} initiate={}", c.clouds.size(), c.initiate.size());
    return true;
}

double Service::handshake_rate(int window_s) const {
    if (!engine_ || samples_.empty()) return 0;
    uint64_t now = mono_ns(), cur = engine_->counter(Counter::ike_established);
    uint64_t from = now - uint64_t(window_s) * 1000000000ull;
    for (auto& [t, v] : samples_)
        if (t >= from) {
            if (now <= t) return 0;
            return double(cur - v) / (double(now - t) / 1e9);
        }
    return 0;
}

// DELETEs started per 10 ms: a burst of a thousand overflowed the host
// interface's queue before the loop could carry it to the port (1-15 of
// 1,000 lost in the lab, then answered only after a retransmission).
constexpr size_t kCloseBurst = 250;

bool Service::close(uint64_t wait_ms, std::function<void()> done) {
    if (!engine_) return false;
    uint64_t t0 = mono_ns(), deadline = t0 + wait_ms * 1'000'000ull;
    auto silent = [this](const IpAddr& a) {
        return std::find(vips_held_.begin(), vips_held_.end(), a) != vips_held_.end();
    };
    close_deleted_ = engine_->close_all(silent, kCloseBurst);
    rearm();
    if (!engine_->closing()) return false;
    // Every 10 ms: SAs that became established meanwhile are deleted too;
    // done when nothing is waiting for an answer, or at the deadline.
    // (The loop runs a copy of the callback: the count lives in a member.)
    closer_ = loop_.every_ms(10, [this, deadline, t0, silent, done] {
        if (!engine_) return;
        close_deleted_ += engine_->close_all(silent, kCloseBurst);
        rearm();
        uint64_t now = mono_ns();
        if (engine_->closing() && now < deadline) return;
        LOG_INFO("ike", "event=closed deleted={} unanswered={} elapsed_ms={}", close_deleted_, engine_->closing(),
                 (now - t0) / 1'000'000ull);
        loop_.cancel(closer_);
        closer_ = 0;
        done();
    });
    return true;
}

void Service::stop() {
    if (closer_) loop_.cancel(closer_);
    closer_ = 0;
    if (timer_) loop_.cancel(timer_);
    timer_ = 0;
    if (sampler_) loop_.cancel(sampler_);
    sampler_ = 0;
    for (int fd : udp_.fds()) loop_.del_fd(fd);
    engine_.reset();
    udp_.close();
    vip_bound_.clear();
}

void Service::rearm() {
    if (!engine_) return;
    uint64_t next = engine_->next_timer();
    // Queued handshakes say "now" (0): a deadline of the loop's clock, so
    // the loop reads its sockets between two slices.
    if (next != std::numeric_limits<uint64_t>::max()) next = std::max(next, loop_.now());
    if (next == timer_at_ && timer_) return;
    if (timer_) loop_.cancel(timer_);
    timer_ = 0;
    timer_at_ = next;
    if (next == std::numeric_limits<uint64_t>::max()) return;
    timer_ = loop_.at(next, [this] {
        timer_ = 0;
        engine_->on_timer();
        rearm();
    });
}

void Service::set_offered(Engine::Offered f) {
    offered_ = std::move(f);
    if (engine_) engine_->set_offered(offered_);
}

}  // namespace nimbus::ike
