#include "control/config/firewall.h"
#include "control/config/config.h"
#include "control/config/tree.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "control/config/clouds.h"
#include "control/config/ha.h"
#include "control/config/schema.h"
#include "src/common/bytes.h"

namespace nimbus::config {

bool Port::is_pci() const {
    static const std::regex pci("^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]$");
    return std::regex_match(device, pci);
}

std::string Port::device_name() const { return device.substr(0, device.find(',')); }

std::string Port::device_arg(const std::string& key) const {
    std::stringstream ss(device);
    std::string part;
    std::getline(ss, part, ',');  // the device name itself
    while (std::getline(ss, part, ',')) {
        auto eq = part.find('=');
        if (eq != std::string::npos && part.substr(0, eq) == key) return part.substr(eq + 1);
    }
    return "";
}

const Cloud* Config::cloud(const std::string& name) const {
    for (auto& c : clouds)
        if (c.name == name) return &c;
    return nullptr;
}

const Port* Config::port(const std::string& name) const {
    for (auto& p : ports)
        if (p.name == name) return &p;
    return nullptr;
}

const Vrf* Config::vrf(const std::string& name) const {
    for (auto& v : vrfs)
        if (v.name == name) return &v;
    return nullptr;
}

int Config::vrf_index(const std::string& name) const {
    for (size_t i = 0; i < vrfs.size(); i++)
        if (vrfs[i].name == name) return int(i);
    return -1;
}

Secret::~Secret() {
    if (!bytes.empty()) wipe(bytes.data(), bytes.size());
}

size_t cipher_keymat_len(const std::string& c) {
    if (c == "aes128gcm16") return 20;
    if (c == "aes256gcm16" || c == "chacha20poly1305") return 36;
    return 0;
}

namespace {

const std::regex kNameRe("^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$");
// Port names become Linux interface names: at most 15 characters.
const std::regex kIfNameRe("^[A-Za-z][A-Za-z0-9_.-]{0,14}$");
const std::regex kVdevRe("^net_[a-z_]+[0-9]+(,[A-Za-z0-9_-]+=[^,]*)*$");  // keys: iface, no-rx, ...

void read_node(MapReader& top, Config& c) {
    MapReader m(top.get("node"), "node", top.errors());
    if (!top.has("node")) {
        top.errors().add(top.node().Mark(), "node", "required section is missing");
        return;
    }
    if (auto s = m.str("name", true)) {
        if (!std::regex_match(*s, kNameRe))
            m.errors().add(m.get("name").Mark(), "node.name",
                           fmt::format("'{}' is not a valid name (letters, digits, '.', '_', '-'; up to 32)", *s));
        else c.node.name = *s;
    }
    if (auto r = m.choice("role", {"concentrator", "edge"}))
        c.node.role = *r == "edge" ? Role::Edge : Role::Concentrator;
    m.finish();
}

void read_dataplane(MapReader& top, Config& c) {
    MapReader m(top.get("dataplane"), "dataplane", top.errors());
    auto& d = c.dataplane;
    if (auto v = m.integer("workers", 1, 64)) d.workers = int(*v);
    if (auto v = m.integer("idle_sleep_us", 0, 100000)) d.idle_sleep_us = int(*v);
    if (auto v = m.str_list("eal")) d.eal = *v;
    if (auto v = m.integer("mbufs", 1023, 4 * 1024 * 1024)) d.mbufs = int(*v);
    if (auto v = m.integer("rx_burst", 1, 256)) d.rx_burst = int(*v);
    if (auto v = m.integer("ipv4_tbl8", 256, 1 << 24)) d.ipv4_tbl8 = int(*v);
    if (auto v = m.integer("ipv6_routes", 1024, 1 << 24)) d.ipv6_routes = int(*v);
    if (auto v = m.integer("ipv6_tbl8", 256, 1 << 24)) d.ipv6_tbl8 = int(*v);
    if (auto v = m.integer("reassembly_flows", 16, 1 << 20)) d.reassembly_flows = int(*v);
    if (auto v = m.integer("reassembly_timeout_ms", 10, 60000)) d.reassembly_timeout_ms = int(*v);
    if (auto v = m.integer("firewall_flows", 64, 1 << 24)) d.firewall_flows = int(*v);
    if (m.has("punt")) {
        MapReader p(m.get("punt"), "dataplane.punt", m.errors());
        for (int i = 0; i < kPuntClasses; i++) {
            if (!p.has(kPuntClassNames[i])) {
                p.get(kPuntClassNames[i]);
                continue;
            }
            MapReader r(p.get(kPuntClassNames[i]), p.path(kPuntClassNames[i]), m.errors());
            if (auto v = r.integer("pps", 1, 10000000)) d.punt[i].pps = uint32_t(*v);
            if (auto v = r.integer("burst", 1, 1000000)) d.punt[i].burst = uint32_t(*v);
            r.finish();
        }
        p.finish();
    } else {
        m.get("punt");
    }
    m.finish();
}

void read_mgmt(MapReader& top, Config& c) {
    MapReader m(top.get("mgmt"), "mgmt", top.errors());
    if (auto s = m.str("socket")) {
        if (s->empty() || (*s)[0] != '/')
            m.errors().add(m.get("socket").Mark(), "mgmt.socket", "must be an absolute path");
        else c.mgmt.socket = *s;
    }
    if (auto s = m.choice("log_level", {"debug", "info", "warn", "error"})) c.mgmt.log_level = *s;
    if (auto s = m.str("state_dir")) {
        if (s->empty() || (*s)[0] != '/')
            m.errors().add(m.get("state_dir").Mark(), "mgmt.state_dir", "must be an absolute path");
        else c.mgmt.state_dir = *s;
    }
    if (auto v = m.integer("history", 2, 1000)) c.mgmt.history = int(*v);
    auto hostport = [&](MapReader& r, const std::string& key, std::string* out) {
        auto s = r.str(key);
        if (!s) return;
        auto colon = s->rfind(':');
        std::string host = colon == std::string::npos ? "" : s->substr(0, colon);
        if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
        std::string port = colon == std::string::npos ? "" : s->substr(colon + 1);
        bool ok = IpAddr::parse(host).has_value() && !port.empty() && port.size() <= 5 &&
                  port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) <= 65535;
        if (!ok)
            r.errors().add(r.get(key).Mark(), r.path(key),
                           fmt::format("'{}' is not ADDRESS:PORT (e.g. 192.0.2.10:8443 or [2001:db8::1]:8443)", *s));
        else *out = *s;
    };
    if (m.has("api")) {
        MapReader a(m.get("api"), "mgmt.api", m.errors());
        hostport(a, "listen", &c.mgmt.api.listen);
        for (const char* k : {"cert", "key", "client_ca"}) {
            auto v = a.str(k, true);
            if (v && (v->empty() || (*v)[0] != '/'))
                a.errors().add(a.get(k).Mark(), a.path(k), "must be an absolute path");
            else if (v) (std::string(k) == "cert" ? c.mgmt.api.cert : std::string(k) == "key" ? c.mgmt.api.key
                                                                                               : c.mgmt.api.client_ca) = *v;
        }
        if (auto v = a.str_list("admins")) c.mgmt.api.admins = *v;
        if (auto v = a.str_list("readers")) c.mgmt.api.readers = *v;
        if (!a.has("listen")) a.errors().add(a.node().Mark(), "mgmt.api.listen", "required key is missing");
        a.finish();
    } else {
        m.get("api");
    }
    if (m.has("metrics")) {
        MapReader mt(m.get("metrics"), "mgmt.metrics", m.errors());
        hostport(mt, "listen", &c.mgmt.metrics_listen);
        if (auto v = mt.choice("per_tunnel", {"auto", "on", "off"})) c.mgmt.metrics_per_tunnel = *v;
        if (auto v = mt.integer("per_tunnel_limit", 0, 10000000)) c.mgmt.metrics_per_tunnel_limit = int(*v);
        mt.finish();
    } else {
        m.get("metrics");
    }
    if (m.has("alarms")) {
        MapReader al(m.get("alarms"), "mgmt.alarms", m.errors());
        if (auto v = al.integer("cert_expiry_days", 0, 3650)) c.mgmt.alarm_cert_days = int(*v);
        if (auto v = al.integer("crl_expiry_hours", 0, 24 * 365)) c.mgmt.alarm_crl_hours = int(*v);
        al.finish();
    } else {
        m.get("alarms");
    }
    m.finish();
}

void read_vrfs(MapReader& top, Config& c) {
    c.vrfs.push_back(Vrf{"default", {}});
    each(top.get("vrfs"), "vrfs", top.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader m(n, path, top.errors());
        Vrf v;
        v.where = where_of(n);
        if (auto s = m.str("name", true)) {
            if (!std::regex_match(*s, kNameRe))
                m.errors().add(m.get("name").Mark(), path + ".name", fmt::format("'{}' is not a valid name", *s));
            else if (c.vrf(*s))
                m.errors().add(m.get("name").Mark(), path + ".name", fmt::format("duplicate VRF '{}'", *s));
            else {
                v.name = *s;
                c.vrfs.push_back(v);
            }
        }
        m.finish();
    });
}

std::string vrf_names(const Config& c) {
    std::string s;
    for (auto& v : c.vrfs) s += (s.empty() ? "" : ", ") + v.name;
    return s;
}

// A key that names a VRF: must be one the config defines. Returns false
// (with the error recorded) when it names an unknown one.
bool read_vrf_ref(MapReader& m, const std::string& key, const Config& c, std::string* out) {
    auto s = m.str(key);
    if (!s) return true;
    if (!c.vrf(*s)) {
        m.errors().add(m.get(key).Mark(), m.path(key),
                       fmt::format("unknown VRF '{}' (defined: {})", *s, vrf_names(c)));
        return false;
    }
    *out = *s;
    return true;
}

void read_ports(MapReader& top, Config& c) {
    std::map<std::string, std::string> devices;  // device name -> port
    each(top.get("ports"), "ports", top.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader m(n, path, top.errors());
        Errors& e = m.errors();
        Port p;
        p.where = where_of(n);
        bool ok = m.valid();
        if (auto s = m.str("name", true)) {
            if (!std::regex_match(*s, kIfNameRe)) {
                e.add(m.get("name").Mark(), path + ".name",
                      fmt::format("'{}' is not a valid port name (an interface name: a letter, then "
                                  "letters, digits, '_', '.', '-'; up to 15)", *s));
                ok = false;
            } else if (c.port(*s)) {
                e.add(m.get("name").Mark(), path + ".name", fmt::format("duplicate port '{}'", *s));
                ok = false;
            } else {
                p.name = *s;
            }
        } else {
            ok = false;
        }
        if (auto s = m.str("device", true)) {
            p.device = *s;
            if (!p.is_pci() && !std::regex_match(*s, kVdevRe)) {
                e.add(m.get("device").Mark(), path + ".device",
                      fmt::format("'{}' is neither a PCI address (0000:03:00.1) nor a vdev "
                                  "(net_af_packet0,iface=eth1)", *s));
                ok = false;
            } else {
                auto dn = p.device_name();
                if (devices.count(dn)) {
                    e.add(m.get("device").Mark(), path + ".device",
                          fmt::format("device '{}' is already used by port '{}'", dn, devices[dn]));
                    ok = false;
                } else {
                    devices[dn] = p.name;
                }
            }
        } else {
            ok = false;
        }
        if (!read_vrf_ref(m, "vrf", c, &p.vrf)) ok = false;
        each(m.get("addresses"), path + ".addresses", e, [&](const YAML::Node& an, const std::string& ap) {
            auto a = as_ifaddr(an, ap, e);
            if (!a) {
                ok = false;
                return;
            }
            // No address twice and no overlapping subnets within one VRF: the
            // connected routes would fight.
            for (auto& q : c.ports) {
                if (q.vrf != p.vrf) continue;
                for (auto& qa : q.addresses)
                    if (qa.subnet().contains(a->addr) || a->subnet().contains(qa.addr)) {
                        e.add(an.Mark(), ap,
                              fmt::format("{} overlaps {} of port '{}' in VRF '{}'", a->str(), qa.str(),
                                          q.name, p.vrf));
                        ok = false;
                        return;
                    }
            }
            for (auto& qa : p.addresses)
                if (qa.subnet().contains(a->addr) || a->subnet().contains(qa.addr)) {
                    e.add(an.Mark(), ap, fmt::format("{} overlaps {} on the same port", a->str(), qa.str()));
                    ok = false;
                    return;
                }
            p.addresses.push_back(*a);
        });
        if (auto v = m.integer("mtu", 576, 9600)) p.mtu = int(*v);
        if (p.mtu < 1280)
            for (auto& a : p.addresses)
                if (!a.addr.is_v4()) {
                    e.add(m.get("mtu").Mark(), path + ".mtu", "IPv6 needs an MTU of at least 1280");
                    ok = false;
                    break;
                }
        m.finish();
        if (ok) c.ports.push_back(p);
    });
}

void read_routes(MapReader& top, Config& c) {
    each(top.get("routes"), "routes", top.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader m(n, path, top.errors());
        Errors& e = m.errors();
        Route r;
        r.where = where_of(n);
        bool ok = m.valid();
        if (!read_vrf_ref(m, "vrf", c, &r.vrf)) ok = false;
        if (!m.has("prefix")) {
            e.add(n.Mark(), path + ".prefix", "required key is missing");
            ok = false;
        } else if (auto p = as_prefix(m.get("prefix"), path + ".prefix", e)) {
            r.prefix = *p;
        } else {
            ok = false;
        }
        if (m.has("via")) {
            if (auto a = as_ip(m.get("via"), path + ".via", e)) {
                if (ok && a->family != r.prefix.family()) {
                    e.add(m.get("via").Mark(), path + ".via",
                          fmt::format("next hop {} is not of the prefix's address family", a->str()));
                    ok = false;
                }
                r.via = a;
            } else {
                ok = false;
            }
        }
        if (auto s = m.str("port")) {
            const Port* p = c.port(*s);
            if (!p) {
                e.add(m.get("port").Mark(), path + ".port", fmt::format("unknown port '{}'", *s));
                ok = false;
            } else if (p->vrf != r.vrf) {
                e.add(m.get("port").Mark(), path + ".port",
                      fmt::format("port '{}' is in VRF '{}', not '{}'", *s, p->vrf, r.vrf));
                ok = false;
            } else {
                r.port = *s;
            }
        }
        if (auto b = m.boolean("blackhole")) r.blackhole = *b;
        if (auto v = m.integer("distance", 1, 255)) r.distance = int(*v);
        if (ok && r.blackhole && (r.via || !r.port.empty())) {
            e.add(n.Mark(), path, "a blackhole route has no 'via' or 'port'");
            ok = false;
        }
        if (ok && !r.blackhole && !r.via && r.port.empty()) {
            e.add(n.Mark(), path, "a route needs 'via', 'port' or 'blackhole: true'");
            ok = false;
        }
        if (ok) {
            for (auto& q : c.routes)
                if (q.vrf == r.vrf && q.prefix == r.prefix && q.via == r.via && q.port == r.port &&
                    q.blackhole == r.blackhole) {
                    e.add(n.Mark(), path,
                          fmt::format("duplicate of the route at line {} ({} in VRF '{}')", q.where.line,
                                      r.prefix.str(), r.vrf));
                    ok = false;
                    break;
                }
        }
        m.finish();
        if (ok) c.routes.push_back(r);
    });
}

// DSCP by name (RFC 2474, 2597, 3246, 5865) or number.
std::optional<int> dscp_value(const std::string& s) {
    static const std::regex af("^af([1-4])([1-3])$"), cs("^cs([0-7])$"), num("^[0-9]{1,2}$");
    std::smatch m;
    if (s == "ef") return 46;
    if (s == "va" || s == "voice-admit") return 44;
    if (s == "be" || s == "default") return 0;
    if (std::regex_match(s, m, af)) return 8 * (m[1].str()[0] - '0') + 2 * (m[2].str()[0] - '0');
    if (std::regex_match(s, m, cs)) return 8 * (m[1].str()[0] - '0');
    if (std::regex_match(s, num)) {
        int v = std::stoi(s);
        if (v <= 63) return v;
    }
    return std::nullopt;
}

std::optional<uint32_t> as_spi(const YAML::Node& n, const std::string& path, Errors& e) {
    auto s = as_str(n, path, e);
    if (!s) return std::nullopt;
    std::string t = *s;
    int base = 10;
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
        t = t.substr(2);
        base = 16;
    }
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v, base);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size() || v > 0xffffffffull) {
        e.add(n.Mark(), path, fmt::format("'{}' is not an SPI (a 32-bit number, decimal or 0x hex)", *s));
        return std::nullopt;
    }
    if (v < 256) {
        e.add(n.Mark(), path, fmt::format("SPI {} is reserved (RFC 4303 §2.1: 1..255); use 256 or more", v));
        return std::nullopt;
    }
    return uint32_t(v);
}

// The key itself never appears in a message.
std::optional<Secret> as_key(const YAML::Node& n, const std::string& path, Errors& e, const std::string& cipher) {
    if (!n.IsDefined() || n.IsNull()) return std::nullopt;
    if (!n.IsScalar()) {
        e.add(n.Mark(), path, "expected a hexadecimal string (key || salt)");
        return std::nullopt;
    }
    std::string t = n.Scalar();
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) t = t.substr(2);
    bool hex = !t.empty() && t.size() % 2 == 0 &&
               std::all_of(t.begin(), t.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
    if (!hex) {
        wipe(t.data(), t.size());
        e.add(n.Mark(), path, "not an even number of hexadecimal digits (the value is not shown)");
        return std::nullopt;
    }
    Secret k;
    k.bytes = from_hex(t);
    wipe(t.data(), t.size());
    size_t want = cipher_keymat_len(cipher);
    if (want && k.bytes.size() != want) {
        e.add(n.Mark(), path,
              fmt::format("{} bytes of key material; {} needs {} ({}-byte key and 4-byte salt)", k.bytes.size(),
                          cipher, want, want - 4));
        return std::nullopt;
    }
    return k;
}

bool is_our_address(const Config& c, const std::string& vrf, const IpAddr& a) {
    for (auto& p : c.ports)
        if (p.vrf == vrf)
            for (auto& x : p.addresses)
                if (x.addr == a) return true;
    return false;
}

// The allowed prefixes of the manual tunnels accepted so far, per VRF and
// family, as address ranges. They never overlap (an overlap is refused), so
// the range starting last at or before a new prefix's end is the only one
// that can overlap it: checking 100,000 tunnels is O(n log n), not O(n^2).
class AllowedIndex {
public:
    using U128 = unsigned __int128;
    struct Hit {
        size_t tunnel;
        Prefix prefix;
    };
    std::optional<Hit> overlap(const std::string& vrf, const Prefix& p) const {
        auto [lo, hi] = p.range();
        auto it = ranges_.upper_bound(Key{vrf, p.family(), hi});
        if (it == ranges_.begin()) return std::nullopt;
        --it;
        const auto& [k, v] = *it;
        if (k.vrf != vrf || k.family != p.family() || v.hi < lo) return std::nullopt;
        return Hit{v.tunnel, v.prefix};
    }
    void add(const std::string& vrf, const Prefix& p, size_t tunnel) {
        auto [lo, hi] = p.range();
        ranges_[Key{vrf, p.family(), lo}] = Val{hi, tunnel, p};
    }

private:
    struct Key {
        std::string vrf;
        Family family;
        U128 lo;
        auto operator<=>(const Key&) const = default;
    };
    struct Val {
        U128 hi;
        size_t tunnel;
        Prefix prefix;
    };
    std::map<Key, Val> ranges_;
};

void read_manual_sas(MapReader& top, Config& c) {
    // (SPI slot -> "tunnel") for inbound SPIs; every SPI in the file.
    std::map<uint32_t, std::pair<uint32_t, std::string>> slots;
    std::map<uint32_t, std::string> spis;
    std::set<std::string> names;  // of the tunnels accepted so far
    AllowedIndex allowed;
    constexpr uint32_t kSlotMask = (1u << 18) - 1;  // dataplane/api.h kSpiSlotBits
    each(top.get("manual_sas"), "manual_sas", top.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader m(n, path, top.errors());
        Errors& e = m.errors();
        ManualTunnel t;
        t.where = where_of(n);
        bool ok = m.valid();
        if (auto s = m.str("name", true)) {
            if (!std::regex_match(*s, kNameRe)) {
                e.add(m.get("name").Mark(), path + ".name", fmt::format("'{}' is not a valid name", *s));
                ok = false;
            } else if (names.count(*s)) {
                e.add(m.get("name").Mark(), path + ".name", fmt::format("duplicate tunnel '{}'", *s));
                ok = false;
            } else {
                t.name = *s;
            }
        } else {
            ok = false;
        }
        if (!read_vrf_ref(m, "vrf", c, &t.vrf)) ok = false;
        if (!read_vrf_ref(m, "underlay_vrf", c, &t.underlay_vrf)) ok = false;
        if (auto s = m.choice("cipher", {"aes128gcm16", "aes256gcm16", "chacha20poly1305"}, true)) t.cipher = *s;
        else ok = false;
        if (auto b = m.boolean("esn")) t.esn = *b;
        if (auto s = m.choice("encap", {"udp", "esp"})) t.udp = *s == "udp";
        if (auto v = m.integer("replay_window", 64, 4096)) t.replay_window = int(*v);
        if (auto v = m.integer("mtu", 576, 9000)) t.mtu = int(*v);
        if (auto b = m.boolean("mss_clamp")) t.mss_clamp = *b;
        if (m.has("critical")) {
            MapReader cr(m.get("critical"), path + ".critical", e);
            each(cr.get("dscp"), path + ".critical.dscp", e, [&](const YAML::Node& dn, const std::string& dp) {
                auto s = as_str(dn, dp, e);
                if (!s) return;
                auto v = dscp_value(*s);
                if (!v) {
                    e.add(dn.Mark(), dp, fmt::format("'{}' is not a DSCP (0..63, ef, afXY, csN, va, be)", *s));
                    ok = false;
                    return;
                }
                t.critical_dscp |= uint64_t(1) << *v;
            });
            cr.finish();
        } else {
            m.get("critical");
        }
        if (!m.has("allowed")) {
            e.add(n.Mark(), path + ".allowed", "required key is missing (the inner prefixes the site may use)");
            ok = false;
        }
        each(m.get("allowed"), path + ".allowed", e, [&](const YAML::Node& an, const std::string& ap) {
            auto p = as_prefix(an, ap, e);
            if (!p) {
                ok = false;
                return;
            }
            if (p->is_default()) {
                e.add(an.Mark(), ap, fmt::format("{}: a site may not claim a default route", p->str()));
                ok = false;
                return;
            }
            if (auto hit = allowed.overlap(t.vrf, *p)) {
                e.add(an.Mark(), ap,
                      fmt::format("{} overlaps {} of tunnel '{}' in VRF '{}'", p->str(), hit->prefix.str(),
                                  c.manual_sas[hit->tunnel].name, t.vrf));
                ok = false;
                return;
            }
            for (auto& q : t.allowed)
                if (q.contains(*p) || p->contains(q)) {
                    e.add(an.Mark(), ap, fmt::format("{} overlaps {} of the same tunnel", p->str(), q.str()));
                    ok = false;
                    return;
                }
            t.allowed.push_back(*p);
        });
        if (!m.has("paths")) {
            e.add(n.Mark(), path + ".paths", "required key is missing");
            ok = false;
        }
        each(m.get("paths"), path + ".paths", e, [&](const YAML::Node& pn, const std::string& pp) {
            MapReader pr(pn, pp, e);
            TunnelPath tp;
            tp.where = where_of(pn);
            bool pok = pr.valid();
            if (!pr.has("local") || !pr.has("remote")) {
                e.add(pn.Mark(), pp, "a path needs 'local' and 'remote'");
                pok = false;
            }
            if (auto a = pr.has("local") ? as_ip(pr.get("local"), pp + ".local", e) : std::nullopt) {
                if (!is_our_address(c, t.underlay_vrf, *a)) {
                    e.add(pr.get("local").Mark(), pp + ".local",
                          fmt::format("{} is not an address of a port in VRF '{}'", a->str(), t.underlay_vrf));
                    pok = false;
                }
                tp.local = *a;
            } else {
                pok = false;
            }
            if (auto a = pr.has("remote") ? as_ip(pr.get("remote"), pp + ".remote", e) : std::nullopt) tp.remote = *a;
            else pok = false;
            if (pok && tp.local.family != tp.remote.family) {
                e.add(pr.get("remote").Mark(), pp + ".remote",
                      fmt::format("{} is not of the family of local {}", tp.remote.str(), tp.local.str()));
                pok = false;
            }
            if (auto v = pr.integer("port", 1, 65535)) tp.port = int(*v);
            pr.finish();
            if (t.paths.size() == 4) {
                e.add(pn.Mark(), pp, "a tunnel has at most 4 paths");
                pok = false;
            }
            if (pok) t.paths.push_back(tp);
            else ok = false;
        });
        if (m.has("paths") && t.paths.empty() && ok) {
            e.add(m.get("paths").Mark(), path + ".paths", "a tunnel needs at least one path");
            ok = false;
        }
        auto spi_seen = [&](uint32_t spi, const YAML::Node& at, const std::string& p) {
            auto it = spis.find(spi);
            if (it != spis.end()) {
                e.add(at.Mark(), p, fmt::format("SPI {:#010x} is already used by tunnel '{}'", spi, it->second));
                return true;
            }
            spis[spi] = t.name;
            return false;
        };
        if (!m.has("out")) {
            e.add(n.Mark(), path + ".out", "required key is missing");
            ok = false;
        } else {
            MapReader o(m.get("out"), path + ".out", e);
            if (!o.has("spi") || !o.has("key")) {
                e.add(m.get("out").Mark(), path + ".out", "needs 'spi' and 'key'");
                ok = false;
            }
            if (auto v = o.has("spi") ? as_spi(o.get("spi"), path + ".out.spi", e) : std::nullopt) {
                if (spi_seen(*v, o.get("spi"), path + ".out.spi")) ok = false;
                t.out.spi = *v;
            } else {
                ok = false;
            }
            if (auto k = as_key(o.get("key"), path + ".out.key", e, t.cipher)) t.out.key = *k;
            else ok = false;
            t.out.where = where_of(m.get("out"));
            o.finish();
        }
        if (!m.has("in")) {
            e.add(n.Mark(), path + ".in", "required key is missing (1 to 4 inbound SAs)");
            ok = false;
        }
        each(m.get("in"), path + ".in", e, [&](const YAML::Node& in, const std::string& ip) {
            MapReader r(in, ip, e);
            ManualSaKey k;
            k.where = where_of(in);
            if (!r.has("spi") || !r.has("key")) {
                e.add(in.Mark(), ip, "needs 'spi' and 'key'");
                ok = false;
            }
            if (auto v = r.has("spi") ? as_spi(r.get("spi"), ip + ".spi", e) : std::nullopt) {
                k.spi = *v;
                auto sl = slots.find(*v & kSlotMask);
                if (spi_seen(*v, r.get("spi"), ip + ".spi")) {
                    ok = false;
                } else if (sl != slots.end()) {
                    e.add(r.get("spi").Mark(), ip + ".spi",
                          fmt::format("inbound SPI {:#010x} shares its table slot with {:#010x} of tunnel '{}' "
                                      "(inbound SPIs must differ in their low 18 bits)",
                                      *v, sl->second.first, sl->second.second));
                    ok = false;
                } else {
                    slots[*v & kSlotMask] = {*v, t.name};
                }
            } else {
                ok = false;
            }
            if (auto key = as_key(r.get("key"), ip + ".key", e, t.cipher)) k.key = *key;
            else ok = false;
            r.finish();
            if (t.in.size() == 4) {
                e.add(in.Mark(), ip, "a tunnel has at most 4 inbound SAs");
                ok = false;
            }
            t.in.push_back(k);
        });
        if (m.has("in") && t.in.empty() && ok) {
            e.add(m.get("in").Mark(), path + ".in", "a tunnel needs at least one inbound SA");
            ok = false;
        }
        if (m.has("lifetime")) {
            MapReader l(m.get("lifetime"), path + ".lifetime", e);
            constexpr int64_t kMax = INT64_MAX;
            if (auto v = l.integer("soft_bytes", 1, kMax)) t.soft_bytes = uint64_t(*v);
            if (auto v = l.integer("hard_bytes", 1, kMax)) t.hard_bytes = uint64_t(*v);
            if (auto v = l.integer("soft_packets", 1, kMax)) t.soft_packets = uint64_t(*v);
            if (auto v = l.integer("hard_packets", 1, kMax)) t.hard_packets = uint64_t(*v);
            if (t.soft_bytes && t.hard_bytes && t.soft_bytes >= t.hard_bytes) {
                e.add(l.get("soft_bytes").Mark(), path + ".lifetime.soft_bytes", "must be below hard_bytes");
                ok = false;
            }
            if (t.soft_packets && t.hard_packets && t.soft_packets >= t.hard_packets) {
                e.add(l.get("soft_packets").Mark(), path + ".lifetime.soft_packets", "must be below hard_packets");
                ok = false;
            }
            l.finish();
        } else {
            m.get("lifetime");
        }
        m.finish();
        if (ok) {
            names.insert(t.name);
            for (auto& q : t.allowed) allowed.add(t.vrf, q, c.manual_sas.size());
            c.manual_sas.push_back(t);
        }
    });
}

}  // namespace

Result parse(const std::string& text, const std::string& name) {
    Result res;
    Errors errs(name);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& ex) {
        errs.add(ex.mark, "(syntax)", ex.msg);
        res.errors = std::move(errs.list());
        return res;
    }
    Config c;
    c.file = name;
    MapReader top(root, "", errs);
    if (!top.valid()) {
        res.errors = std::move(errs.list());
        return res;
    }
    read_node(top, c);
    read_mgmt(top, c);
    read_dataplane(top, c);
    read_vrfs(top, c);
    read_ports(top, c);
    read_routes(top, c);
    read_clouds(top, c);
    read_ike(top, c);
    read_initiate(top, c);
    read_manual_sas(top, c);
    read_ha(top, c);
    read_routing(top, c);
    read_firewall(top, c);
    top.finish();
    res.errors = std::move(errs.list());
    if (res.errors.empty()) {
        res.config = std::move(c);
        try {
            res.tree = std::make_shared<const Tree>(Tree::of(root));
        } catch (const std::length_error& ex) {
            res.config.reset();
            res.errors.push_back(fmt::format("{}: {}", name, ex.what()));
        }
    }
    return res;
}

Result load(const std::string& path) {
    std::ifstream f(path);
    if (!f) {
        Result r;
        r.errors.push_back(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
        return r;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    return parse(ss.str(), path);
}

}  // namespace nimbus::config
