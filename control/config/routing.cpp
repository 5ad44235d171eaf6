// Reading and validating the `routing:` section (see routing.h).
#include "control/config/routing.h"

#include <charconv>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "control/config/config.h"
#include "control/config/schema.h"

namespace nimbus::config {

const RoutingCloud* Routing::cloud_for_vrf(const std::string& vrf) const {
    for (auto& c : clouds)
        if (c.vrf == vrf) return &c;
    return nullptr;
}

const RoutingSite* Routing::site(const std::string& name) const {
    for (auto& s : sites)
        if (s.name == name) return &s;
    return nullptr;
}

std::vector<std::pair<uint32_t, std::string>> Routing::fpm_tables() const {
    std::vector<std::pair<uint32_t, std::string>> out;
    bool main_taken = false;
    for (auto& c : clouds)
        if (c.table) {
            out.emplace_back(*c.table, c.vrf);
            if (*c.table == 254) main_taken = true;
        }
    bool default_mapped = false;
    for (auto& [t, v] : out)
        if (v == "default") default_mapped = true;
    if (!main_taken && !default_mapped) out.emplace_back(254, "default");
    return out;
}

namespace {

const std::regex kSiteRe("^[A-Za-z0-9][A-Za-z0-9._:=@-]{0,63}$");
const std::regex kVersionRe("^[0-9]+\\.[0-9]+(\\.[0-9]+)?([-~+. ].*)?$");

// "127.0.0.1:2620" or "[::1]:2620".
bool parse_listen(const std::string& s, IpAddr* a, uint16_t* port) {
    std::string host, p;
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
        host = s.substr(1, close - 1);
        p = s.substr(close + 2);
        auto ip = IpAddr::parse(host);
        if (!ip || !ip->is_v6()) return false;
        *a = *ip;
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string::npos) return false;
        host = s.substr(0, colon);
        p = s.substr(colon + 1);
        auto ip = IpAddr::parse(host);
        if (!ip || !ip->is_v4()) return false;
        *a = *ip;
    }
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || end != p.data() + p.size() || p.empty() || v == 0 || v > 65535) return false;
    *port = uint16_t(v);
    return true;
}

// tag / metric / distance, shared by the section, clouds and sites.
template <class T>
void read_attrs(MapReader& m, T& out) {
    if (auto v = m.integer("tag", 0, 0xffffffffll)) out.tag = uint32_t(*v);
    if (auto v = m.integer("metric", 0, 0xffffffffll)) out.metric = uint32_t(*v);
    if (auto v = m.integer("distance", 1, 255)) out.distance = uint8_t(*v);
}

void read_clouds(MapReader& m, Config& c, Routing& r) {
    std::set<std::string> names;
    each(m.get("clouds"), m.path("clouds"), m.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader cm(n, path, m.errors());
        Errors& e = cm.errors();
        RoutingCloud cl;
        cl.where = RoutingPos{where_of(n).line, where_of(n).col};
        bool ok = cm.valid();
        if (auto s = cm.str("name", true)) {
            if (!names.insert(*s).second) {
                e.add(cm.get("name").Mark(), path + ".name", fmt::format("duplicate cloud '{}'", *s));
                ok = false;
            }
            cl.name = *s;
        } else {
            ok = false;
        }
        if (auto s = cm.str("vrf")) {
            if (!c.vrf(*s)) {
                e.add(cm.get("vrf").Mark(), path + ".vrf", fmt::format("unknown VRF '{}'", *s));
                ok = false;
            } else if (r.cloud_for_vrf(*s)) {
                e.add(cm.get("vrf").Mark(), path + ".vrf",
                      fmt::format("VRF '{}' already belongs to cloud '{}'", *s, r.cloud_for_vrf(*s)->name));
                ok = false;
            } else {
                cl.vrf = *s;
            }
        } else if (ok && r.cloud_for_vrf("default")) {
            e.add(n.Mark(), path + ".vrf",
                  fmt::format("VRF 'default' already belongs to cloud '{}'", r.cloud_for_vrf("default")->name));
            ok = false;
        }
        read_attrs(cm, cl);
        if (auto v = cm.integer("table", 1, 0xffffffffll)) {
            if (*v == 253 || *v == 255) {
                e.add(cm.get("table").Mark(), path + ".table",
                      fmt::format("table {} is a reserved kernel table", *v));
                ok = false;
            } else {
                for (auto& o : r.clouds)
                    if (o.table && *o.table == uint32_t(*v)) {
                        e.add(cm.get("table").Mark(), path + ".table",
                              fmt::format("table {} is already mapped to cloud '{}'", *v, o.name));
                        ok = false;
                    }
                cl.table = uint32_t(*v);
            }
        }
        each(cm.get("advertise"), path + ".advertise", e, [&](const YAML::Node& an, const std::string& ap) {
            if (auto p = as_prefix(an, ap, e)) cl.advertise.push_back(*p);
            else ok = false;
        });
        if (auto b = cm.boolean("advertise_bgp")) cl.advertise_bgp = *b;
        cm.finish();
        if (ok) r.clouds.push_back(cl);
    });
}

void read_sites(MapReader& m, Routing& r) {
    each(m.get("sites"), m.path("sites"), m.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader sm(n, path, m.errors());
        Errors& e = sm.errors();
        RoutingSite st;
        st.where = RoutingPos{where_of(n).line, where_of(n).col};
        bool ok = sm.valid();
        if (auto s = sm.str("name", true)) {
            if (!std::regex_match(*s, kSiteRe)) {
                e.add(sm.get("name").Mark(), path + ".name", fmt::format("'{}' is not a valid site name", *s));
                ok = false;
            } else if (r.site(*s)) {
                e.add(sm.get("name").Mark(), path + ".name", fmt::format("duplicate site '{}'", *s));
                ok = false;
            }
            st.name = *s;
        } else {
            ok = false;
        }
        read_attrs(sm, st);
        if (auto v = sm.integer("max_prefixes", 1, 1000000)) st.max_prefixes = uint32_t(*v);
        sm.finish();
        if (ok) r.sites.push_back(st);
    });
}

}  // namespace

void read_routing(MapReader& top, Config& c) {
    if (!top.has("routing")) return;
    MapReader m(top.get("routing"), "routing", top.errors());
    if (!m.valid()) return;
    Errors& e = m.errors();
    Routing r;
    if (auto s = m.str("zebra")) {
        if (s->empty() || (*s)[0] != '/') e.add(m.get("zebra").Mark(), "routing.zebra", "must be an absolute path");
        else if (s->size() >= 108)
            e.add(m.get("zebra").Mark(), "routing.zebra", "path is longer than a unix socket allows (107)");
        else r.zebra = *s;
    }
    if (auto s = m.str("fpm")) {
        IpAddr a;
        uint16_t port = 0;
        if (!parse_listen(*s, &a, &port))
            e.add(m.get("fpm").Mark(), "routing.fpm",
                  fmt::format("'{}' is not ADDRESS:PORT (127.0.0.1:2620, [::1]:2620)", *s));
        else r.fpm_addr = a, r.fpm_port = port;
    }
    std::vector<std::string> types(std::begin(kInjectRouteTypes), std::end(kInjectRouteTypes));
    if (auto s = m.choice("route_type", types)) r.route_type = *s;
    if (auto v = m.integer("instance", 0, 65535)) r.instance = uint16_t(*v);
    {
        struct {
            std::optional<uint32_t> tag, metric;
            std::optional<uint8_t> distance;
        } a;
        read_attrs(m, a);
        r.tag = a.tag.value_or(0);
        r.metric = a.metric.value_or(0);
        r.distance = a.distance.value_or(0);
    }
    if (auto v = m.integer("max_prefixes_per_site", 1, 1000000)) r.max_prefixes_per_site = uint32_t(*v);
    if (auto s = m.str("frr_version")) {
        if (!std::regex_match(*s, kVersionRe))
            e.add(m.get("frr_version").Mark(), "routing.frr_version",
                  fmt::format("'{}' is not an FRR version (8.4.4, 8.4.4-1.1~deb12u2)", *s));
        else r.frr_version = *s;
    }
    if (auto v = m.integer("graceful_restart", 0, 3600)) r.graceful_restart = uint32_t(*v);
    if (auto v = m.integer("zapi_batch", 1, 10000)) r.zapi_batch = uint32_t(*v);
    if (auto v = m.integer("fpm_replay_quiet_ms", 100, 60000)) r.fpm_replay_quiet_ms = uint32_t(*v);
    if (auto v = m.integer("fpm_replay_hold_ms", 0, 600000)) r.fpm_replay_hold_ms = uint32_t(*v);
    if (m.has("host_routes")) {
        MapReader h(m.get("host_routes"), "routing.host_routes", e);
        if (auto b = h.boolean("enabled")) r.host_routes.enabled = *b;
        if (auto v = h.integer("table", 1, 0xffffffffll)) {
            if (*v == 253 || *v == 254 || *v == 255)
                e.add(h.get("table").Mark(), "routing.host_routes.table",
                      fmt::format("table {} is a kernel table zebra selects from or reserved; use another", *v));
            else r.host_routes.table = uint32_t(*v);
        }
        if (auto v = h.integer("priority", 1, 32765)) r.host_routes.priority = uint32_t(*v);
        if (auto s = h.str("port")) {
            const Port* p = c.port(*s);
            if (!p) e.add(h.get("port").Mark(), "routing.host_routes.port", fmt::format("unknown port '{}'", *s));
            else if (p->vrf != "default")
                e.add(h.get("port").Mark(), "routing.host_routes.port",
                      fmt::format("port '{}' is in VRF '{}': host routes live in the default VRF", *s, p->vrf));
            else r.host_routes.port = *s;
        }
        h.finish();
    } else {
        m.get("host_routes");
    }
    read_clouds(m, c, r);
    for (auto& cl : r.clouds)
        if (cl.table && *cl.table == r.host_routes.table)
            e.add(Where{cl.where.line, cl.where.col}, "routing.clouds." + cl.name + ".table",
                  fmt::format("table {} is used by routing.host_routes", *cl.table));
    read_sites(m, r);
    m.finish();
    c.routing = std::move(r);
}

}  // namespace nimbus::config
