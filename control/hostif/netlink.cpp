#include "control/hostif/netlink.h"

#include <fcntl.h>
#include <net/if.h>  // before the linux/ headers (libc-compat)
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

namespace nimbus::hostif {

bool NeighEvent::usable() const {
    return !deleted && mac && !(state & (NUD_FAILED | NUD_INCOMPLETE | NUD_NONE)) && !mac->is_zero();
}

Netlink::~Netlink() {
    if (req_) mnl_socket_close(req_);
    if (ev_) mnl_socket_close(ev_);
}

bool Netlink::open(std::string* err) {
    req_ = mnl_socket_open(NETLINK_ROUTE);
    ev_ = mnl_socket_open(NETLINK_ROUTE);
    if (!req_ || !ev_ || mnl_socket_bind(req_, 0, MNL_SOCKET_AUTOPID) < 0) {
        *err = fmt::format("netlink socket: {}", strerror(errno));
        return false;
    }
    unsigned groups = RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if (mnl_socket_bind(ev_, groups, MNL_SOCKET_AUTOPID) < 0) {
        *err = fmt::format("netlink event socket: {}", strerror(errno));
        return false;
    }
    int fd = mnl_socket_get_fd(ev_);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
    return true;
}

int Netlink::event_fd() const { return ev_ ? mnl_socket_get_fd(ev_) : -1; }

bool Netlink::request(void* p, std::string* err, const std::function<void(const void*)>& each) {
    auto* nlh = static_cast<nlmsghdr*>(p);
    nlh->nlmsg_seq = seq_++;
    uint32_t portid = mnl_socket_get_portid(req_);
    if (mnl_socket_sendto(req_, nlh, nlh->nlmsg_len) < 0) {
        *err = fmt::format("netlink send: {}", strerror(errno));
        return false;
    }
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    struct Ctx {
        const std::function<void(const void*)>* each;
    } ctx{&each};
    auto cb = [](const nlmsghdr* h, void* data) -> int {
        auto* c = static_cast<Ctx*>(data);
        if (*c->each) (*c->each)(h);
        return MNL_CB_OK;
    };
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(req_, buf.data(), buf.size());
        if (n < 0) {
            *err = fmt::format("netlink receive: {}", strerror(errno));
            return false;
        }
        int r = mnl_cb_run(buf.data(), size_t(n), nlh->nlmsg_seq, portid, cb, &ctx);
        if (r == MNL_CB_ERROR) {
            *err = strerror(errno);
            return false;
        }
        if (r == MNL_CB_STOP) return true;
    }
}

bool Netlink::link_set(int ifindex, std::optional<bool> up, std::optional<int> mtu,
                       std::optional<MacAddr> mac, std::string* err) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    if (up) {
        ifm->ifi_change = IFF_UP;
        ifm->ifi_flags = *up ? IFF_UP : 0;
    }
    if (mtu) mnl_attr_put_u32(nlh, IFLA_MTU, uint32_t(*mtu));
    if (mac) mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac->b.data());
    return request(nlh, err);
}

namespace {

nlmsghdr* addr_msg(char* buf, uint16_t type, uint16_t flags, int ifindex, const IfAddr& a) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = a.addr.is_v4() ? AF_INET : AF_INET6;
    ifa->ifa_prefixlen = a.len;
    ifa->ifa_index = uint32_t(ifindex);
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    size_t alen = a.addr.is_v4() ? 4 : 16;
    mnl_attr_put(nlh, IFA_LOCAL, alen, a.addr.b.data());
    mnl_attr_put(nlh, IFA_ADDRESS, alen, a.addr.b.data());
    // No duplicate address detection: the address is ours by configuration,
    // and DAD would hold it "tentative" for a second.
    if (!a.addr.is_v4()) mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
    return nlh;
}

nlmsghdr* route_msg(char* buf, uint16_t type, uint16_t flags, const Prefix& p,
                    const std::optional<IpAddr>& via, int ifindex, bool blackhole) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
    rtm->rtm_family = p.is_v4() ? AF_INET : AF_INET6;
    rtm->rtm_dst_len = p.len;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = Netlink::kRouteProto;
    rtm->rtm_scope = blackhole || via ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    rtm->rtm_type = blackhole ? RTN_BLACKHOLE : RTN_UNICAST;
    size_t alen = p.is_v4() ? 4 : 16;
    mnl_attr_put(nlh, RTA_DST, alen, p.addr.b.data());
    if (via) mnl_attr_put(nlh, RTA_GATEWAY, alen, via->b.data());
    if (ifindex > 0 && !blackhole) mnl_attr_put_u32(nlh, RTA_OIF, uint32_t(ifindex));
    return nlh;
}

}  // namespace

bool Netlink::addr_add(int ifindex, const IfAddr& a, std::string* err) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    return request(addr_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, a), err);
}

bool Netlink::addr_del(int ifindex, const IfAddr& a, std::string* err) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    return request(addr_msg(buf, RTM_DELADDR, 0, ifindex, a), err);
}

bool Netlink::route_add(const Prefix& p, const std::optional<IpAddr>& via, int ifindex, bool blackhole,
                        std::string* err) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    return request(route_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, p, via, ifindex, blackhole), err);
}

bool Netlink::route_del(const Prefix& p, const std::optional<IpAddr>& via, int ifindex, bool blackhole,
                        std::string* err) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    return request(route_msg(buf, RTM_DELROUTE, 0, p, via, ifindex, blackhole), err);
}

std::optional<uint16_t> Netlink::neigh_state(int ifindex, const IpAddr& a) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETNEIGH;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;  // the ACK ends request()'s read
    auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
    nd->ndm_family = a.is_v4() ? AF_INET : AF_INET6;
    nd->ndm_ifindex = ifindex;
    mnl_attr_put(nlh, NDA_DST, a.is_v4() ? 4 : 16, a.b.data());
    std::optional<uint16_t> state;
    std::string err;  // ENOENT: no entry
    request(nlh, &err, [&](const void* p) {
        auto* h = static_cast<const nlmsghdr*>(p);
        if (h->nlmsg_type == RTM_NEWNEIGH && h->nlmsg_len >= mnl_nlmsg_size(sizeof(ndmsg)))
            state = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(h))->ndm_state;
    });
    return state;
}

bool Netlink::neigh_resolve(int ifindex, const IpAddr& a, std::string* err) {
    // Linux (since 5.3, __neigh_update's NEIGH_UPDATE_F_USE branch) clears
    // NUD_PERMANENT from an entry it is asked to use, without a
    // notification: an operator's static entry (or a lab's) would silently
    // become an ordinary one, fail its probes and take the next hop down. A
    // static entry needs no resolving: leave it alone.
    if (auto st = neigh_state(ifindex, a); st && (*st & (NUD_PERMANENT | NUD_NOARP))) return true;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWNEIGH;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
    nd->ndm_family = a.is_v4() ? AF_INET : AF_INET6;
    nd->ndm_ifindex = ifindex;
    nd->ndm_state = NUD_NONE;
    nd->ndm_flags = NTF_USE;  // kernel: neigh_event_send(), i.e. resolve now
    mnl_attr_put(nlh, NDA_DST, a.is_v4() ? 4 : 16, a.b.data());
    return request(nlh, err);
}

namespace {

// libmnl's mnl_attr_for_each relies on C's implicit void* conversion.
#define NB_ATTR_FOR_EACH(attr, nlh, off)                                                              \
    for (const nlattr* attr = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, off));     \
         mnl_attr_ok(attr, int(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -            \
                               reinterpret_cast<const char*>(attr)));                                 \
         attr = mnl_attr_next(attr))

bool parse_neigh(const nlmsghdr* nlh, NeighEvent* ev) {
    if (nlh->nlmsg_type != RTM_NEWNEIGH && nlh->nlmsg_type != RTM_DELNEIGH) return false;
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(ndmsg))) return false;
    auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh));
    if (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6) return false;
    ev->ifindex = nd->ndm_ifindex;
    ev->state = nd->ndm_state;
    ev->deleted = nlh->nlmsg_type == RTM_DELNEIGH;
    bool have_dst = false;
    NB_ATTR_FOR_EACH(attr, nlh, sizeof(ndmsg)) {
        uint16_t t = mnl_attr_get_type(attr);
        uint16_t len = mnl_attr_get_payload_len(attr);
        auto* d = static_cast<const uint8_t*>(mnl_attr_get_payload(attr));
        if (t == NDA_DST) {
            if (nd->ndm_family == AF_INET && len == 4) ev->addr = IpAddr::v4_net(d), have_dst = true;
            else if (nd->ndm_family == AF_INET6 && len == 16) ev->addr = IpAddr::v6_net(d), have_dst = true;
        } else if (t == NDA_LLADDR && len == 6) {
            MacAddr m;
            std::memcpy(m.b.data(), d, 6);
            ev->mac = m;
        }
    }
    return have_dst;
}

bool parse_link(const nlmsghdr* nlh, LinkEvent* ev) {
    if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK) return false;
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(ifinfomsg))) return false;
    auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    ev->ifindex = ifm->ifi_index;
    ev->up = ifm->ifi_flags & IFF_UP;
    ev->running = ifm->ifi_flags & IFF_LOWER_UP;
    ev->deleted = nlh->nlmsg_type == RTM_DELLINK;
    NB_ATTR_FOR_EACH(attr, nlh, sizeof(ifinfomsg)) {
        if (mnl_attr_get_type(attr) == IFLA_IFNAME && mnl_attr_validate(attr, MNL_TYPE_STRING) == 0)
            ev->name = mnl_attr_get_str(attr);
    }
    return true;
}

}  // namespace

bool Netlink::neigh_dump(std::vector<NeighEvent>* out, std::string* err) {
    char buf[MNL_SOCKET_BUFFER_SIZE];
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETNEIGH;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
    nd->ndm_family = AF_UNSPEC;
    return request(nlh, err, [&](const void* p) {
        NeighEvent ev;
        if (parse_neigh(static_cast<const nlmsghdr*>(p), &ev)) out->push_back(ev);
    });
}

void Netlink::read_events(const std::function<void(const NeighEvent&)>& on_neigh,
                          const std::function<void(const LinkEvent&)>& on_link) {
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(ev_, buf.data(), buf.size());
        if (n < 0) {
            if (errno == ENOBUFS) {
                lost_++;  // the kernel dropped events: the caller resyncs
                continue;
            }
            return;  // EAGAIN
        }
        struct Ctx {
            const std::function<void(const NeighEvent&)>* n;
            const std::function<void(const LinkEvent&)>* l;
        } ctx{&on_neigh, &on_link};
        mnl_cb_run(buf.data(), size_t(n), 0, 0,
                   [](const nlmsghdr* h, void* data) -> int {
                       auto* c = static_cast<Ctx*>(data);
                       NeighEvent ne;
                       LinkEvent le;
                       if (parse_neigh(h, &ne)) (*c->n)(ne);
                       else if (parse_link(h, &le)) (*c->l)(le);
                       return MNL_CB_OK;
                   },
                   &ctx);
    }
}

int ifindex_of(const std::string& name) { return int(if_nametoindex(name.c_str())); }

bool sysctl_set(const std::string& path, const std::string& value) {
    std::ofstream f("/proc/sys/" + path);
    if (!f) return false;
    f << value;
    return bool(f);
}

}  // namespace nimbus::hostif
