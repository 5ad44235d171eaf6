#include "control/routing/host_routes.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "src/common/log.h"

namespace nimbus::routing {

// ---- the logic -------------------------------------------------------------------

HostRoutes::HostRoutes(std::vector<Prefix> own_subnets, Apply apply)
    : own_(std::move(own_subnets)), apply_(std::move(apply)) {}

void HostRoutes::on_rib(int vrf, const Route& r, bool added) {
    if (vrf != 0 || r.source != Source::Tunnel) return;
    const Prefix& p = r.prefix;
    if (added) {
        if (p.is_default()) {
            refused_++;
            return;
        }
        for (auto& o : own_)
            if (o.family() == p.family() && (o.contains(p) || p.contains(o))) {
                refused_++;
                last_error_ = fmt::format("{} overlaps the box's own subnet {}: no kernel route", p.str(), o.str());
                LOG_WARN("hostroutes", "event=refused prefix={} overlaps={}", p.str(), o.str());
                return;
            }
        if (refs_[p]++ == 0) pending_.insert(p);
        return;
    }
    auto it = refs_.find(p);
    if (it == refs_.end()) return;
    if (--it->second == 0) {
        refs_.erase(it);
        pending_.insert(p);
    }
}

size_t HostRoutes::pump(size_t max) {
    size_t done = 0;
    while (done < max && !pending_.empty()) {
        Prefix p = *pending_.begin();
        pending_.erase(pending_.begin());
        bool want = refs_.count(p) > 0;
        bool have = installed_.count(p) > 0;
        if (want == have) continue;
        std::string err;
        done++;
        if (!apply_(p, want, &err)) {
            failures_++;
            last_error_ = fmt::format("kernel route {} {}: {}", want ? "add" : "delete", p.str(), err);
            LOG_WARN("hostroutes", "event=kernel_failed op={} prefix={} error=\"{}\"", want ? "add" : "del", p.str(),
                     err);
            // A failed delete leaves nothing of ours to track; a failed add
            // is retried when the prefix changes again.
            if (!want) installed_.erase(p);
            continue;
        }
        if (want) installed_.insert(p);
        else installed_.erase(p);
    }
    return done;
}

// ---- the kernel ------------------------------------------------------------------

namespace {

const IpAddr kGw4 = *IpAddr::parse("169.254.0.1");
const IpAddr kGw6 = *IpAddr::parse("fe80::1");

#define HR_ATTR_FOR_EACH(attr, nlh, off)                                                              \
    for (const nlattr* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, off));     \
         mnl_attr_ok(attr, int(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -            \
                               reinterpret_cast<const char*>(attr)));                                 \
         attr = mnl_attr_next(attr))

}  // namespace

KernelTable::~KernelTable() { close(); }

bool KernelTable::request(void* p, std::string* err, const std::function<void(const void*)>& each) {
    auto* nlh = static_cast<nlmsghdr*>(p);
    nlh->nlmsg_seq = seq_++;
    uint32_t portid = mnl_socket_get_portid(nl_);
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) {
        *err = fmt::format("netlink send: {}", strerror(errno));
        return false;
    }
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    struct Ctx {
        const std::function<void(const void*)>* each;
    } ctx{&each};
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
        if (n < 0) {
            *err = fmt::format("netlink receive: {}", strerror(errno));
            return false;
        }
        int r = mnl_cb_run(buf.data(), size_t(n), nlh->nlmsg_seq, portid,
                           [](const nlmsghdr* h, void* data) -> int {
                               auto* c = static_cast<Ctx*>(data);
                               if (*c->each) (*c->each)(h);
                               return MNL_CB_OK;
                           },
                           &ctx);
        if (r == MNL_CB_ERROR) {
            *err = strerror(errno);
            return false;
        }
        if (r == MNL_CB_STOP) return true;
    }
}

bool KernelTable::rule(bool add, bool v6, std::string* err) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
    auto* fr = static_cast<fib_rule_hdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(fib_rule_hdr)));
    fr->family = v6 ? AF_INET6 : AF_INET;
    fr->action = FR_ACT_TO_TBL;
    fr->table = table_ < 256 ? uint8_t(table_) : uint8_t(RT_TABLE_UNSPEC);
    mnl_attr_put_u32(nlh, FRA_PRIORITY, priority_);
    mnl_attr_put_u32(nlh, FRA_TABLE, table_);
    return request(nlh, err);
}

void KernelTable::flush() {
    struct Gone {
        uint8_t family, len;
        std::vector<uint8_t> dst;
    };
    std::vector<Gone> gone;
    for (int fam : {AF_INET, AF_INET6}) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_GETROUTE;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
        rtm->rtm_family = uint8_t(fam);
        std::string err;
        request(nlh, &err, [&](const void* p) {
            auto* h = static_cast<const nlmsghdr*>(p);
            if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < mnl_nlmsg_size(sizeof(rtmsg))) return;
            auto* r = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(h));
            if (r->rtm_protocol != kProto) return;
            uint32_t table = r->rtm_table;
            std::vector<uint8_t> dst;
            HR_ATTR_FOR_EACH(attr, h, sizeof(rtmsg)) {
                uint16_t t = mnl_attr_get_type(attr);
                if (t == RTA_TABLE && mnl_attr_get_payload_len(attr) == 4) table = mnl_attr_get_u32(attr);
                if (t == RTA_DST) {
                    auto* d = static_cast<const uint8_t*>(mnl_attr_get_payload(attr));
                    dst.assign(d, d + mnl_attr_get_payload_len(attr));
                }
            }
            if (table == table_) gone.push_back(Gone{r->rtm_family, r->rtm_dst_len, dst});
        });
    }
    for (auto& g : gone) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_DELROUTE;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
        rtm->rtm_family = g.family;
        rtm->rtm_dst_len = g.len;
        rtm->rtm_table = table_ < 256 ? uint8_t(table_) : uint8_t(RT_TABLE_UNSPEC);
        rtm->rtm_protocol = kProto;
        rtm->rtm_scope = RT_SCOPE_NOWHERE;
        mnl_attr_put_u32(nlh, RTA_TABLE, table_);
        if (!g.dst.empty()) mnl_attr_put(nlh, RTA_DST, g.dst.size(), g.dst.data());
        std::string err;
        request(nlh, &err);
    }
}

bool KernelTable::open(uint32_t table, uint32_t priority, std::string* err) {
    table_ = table;
    priority_ = priority;
    nl_ = mnl_socket_open(NETLINK_ROUTE);
    if (!nl_ || mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
        *err = fmt::format("netlink socket: {}", strerror(errno));
        return false;
    }
    flush();
    for (bool v6 : {false, true}) {
        std::string e;
        while (rule(false, v6, &e)) {
        }  // rules an earlier run left behind
        if (!rule(true, v6, &e)) {
            if (v6) {  // a kernel without IPv6: IPv4 host routes still work
                LOG_WARN("hostroutes", "event=no_ipv6_rule error=\"{}\"", e);
                continue;
            }
            *err = fmt::format("ip rule pref {} lookup {}: {}", priority_, table_, e);
            return false;
        }
    }
    rules_ = true;
    return true;
}

bool KernelTable::set_port(int ifindex, const MacAddr& mac, std::optional<IpAddr> src4, std::optional<IpAddr> src6,
                           std::string* err) {
    ifindex_ = ifindex;
    mac_ = mac;
    src4_ = src4;
    src6_ = src6;
    for (bool v6 : {false, true}) {
        const IpAddr& gw = v6 ? kGw6 : kGw4;
        char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_NEWNEIGH;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
        nd->ndm_family = v6 ? AF_INET6 : AF_INET;
        nd->ndm_ifindex = ifindex;
        nd->ndm_state = NUD_PERMANENT;
        mnl_attr_put(nlh, NDA_DST, v6 ? 16 : 4, gw.b.data());
        mnl_attr_put(nlh, NDA_LLADDR, 6, mac.b.data());
        std::string e;
        if (!request(nlh, &e)) {
            // IPv6 may be off on the interface: then only IPv4 host routes work.
            if (!v6) {
                *err = fmt::format("neighbour {}: {}", gw.str(), e);
                return false;
            }
            LOG_WARN("hostroutes", "event=no_ipv6_gateway error=\"{}\"", e);
        }
    }
    return true;
}

bool KernelTable::apply(const Prefix& p, bool add, std::string* err) {
    if (!nl_ || !ifindex_) {
        *err = "no host interface";
        return false;
    }
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    bool v6 = !p.is_v4();
    size_t alen = v6 ? 16 : 4;
    rtm->rtm_family = v6 ? AF_INET6 : AF_INET;
    rtm->rtm_dst_len = p.len;
    rtm->rtm_table = table_ < 256 ? uint8_t(table_) : uint8_t(RT_TABLE_UNSPEC);
    rtm->rtm_protocol = kProto;
    rtm->rtm_scope = add ? RT_SCOPE_UNIVERSE : RT_SCOPE_NOWHERE;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put_u32(nlh, RTA_TABLE, table_);
    mnl_attr_put(nlh, RTA_DST, alen, p.addr.b.data());
    if (add) {
        rtm->rtm_flags = RTNH_F_ONLINK;
        const IpAddr& gw = v6 ? kGw6 : kGw4;
        mnl_attr_put(nlh, RTA_GATEWAY, alen, gw.b.data());
        mnl_attr_put_u32(nlh, RTA_OIF, uint32_t(ifindex_));
        const auto& src = v6 ? src6_ : src4_;
        if (src) mnl_attr_put(nlh, RTA_PREFSRC, alen, src->b.data());
    }
    return request(nlh, err);
}

void KernelTable::close() {
    if (!nl_) return;
    std::string e;
    if (rules_)
        for (bool v6 : {false, true}) rule(false, v6, &e);
    rules_ = false;
    flush();
    mnl_socket_close(nl_);
    nl_ = nullptr;
}

}  // namespace nimbus::routing
