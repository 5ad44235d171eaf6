#include "control/config/clouds.h"

#include <regex>

#include <fmt/format.h>

#include "control/ike/messages.h"
#include "control/ike/proposal.h"
#include "control/pki/identity.h"

namespace nimbus::config {

namespace {

const std::regex kCloudNameRe("^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$");
constexpr size_t kMinPsk = 16;

std::string vrf_list(const Config& c) {
    std::string s;
    for (auto& v : c.vrfs) s += (s.empty() ? "" : ", ") + v.name;
    return s;
}

// A list of prefixes; `no_default` refuses 0.0.0.0/0 and ::/0.
std::vector<Prefix> read_prefixes(MapReader& m, const std::string& key, bool no_default, bool* ok) {
    std::vector<Prefix> out;
    each(m.get(key), m.path(key), m.errors(), [&](const YAML::Node& n, const std::string& p) {
        auto pf = as_prefix(n, p, m.errors());
        if (!pf) {
            *ok = false;
            return;
        }
        if (no_default && pf->is_default()) {
            m.errors().add(n.Mark(), p, fmt::format("{} would give the site every address; list its own prefixes",
                                                    pf->str()));
            *ok = false;
            return;
        }
        for (auto& q : out)
            if (q.contains(*pf) || pf->contains(q)) {
                m.errors().add(n.Mark(), p, fmt::format("{} overlaps {} in the same list", pf->str(), q.str()));
                *ok = false;
                return;
            }
        out.push_back(*pf);
    });
    return out;
}

std::optional<SecretText> read_psk(MapReader& m, bool* ok) {
    if (!m.has("psk")) return std::nullopt;
    auto n = m.get("psk");
    if (!n.IsScalar()) {
        m.errors().add(n.Mark(), m.path("psk"), "expected a string");
        *ok = false;
        return std::nullopt;
    }
    // Never echo the value.
    if (n.Scalar().size() < kMinPsk) {
        m.errors().add(n.Mark(), m.path("psk"),
                       fmt::format("a pre-shared key needs at least {} characters (value not shown)", kMinPsk));
        *ok = false;
        return std::nullopt;
    }
    return SecretText{n.Scalar()};
}

std::vector<std::string> read_proposals(MapReader& m, const std::string& key, uint8_t proto,
                                        std::vector<std::string> dflt, bool* ok) {
    if (!m.has(key)) {
        m.get(key);
        return dflt;
    }
    std::vector<std::string> out;
    auto node = m.get(key);
    each(node, m.path(key), m.errors(), [&](const YAML::Node& n, const std::string& p) {
        auto s = as_str(n, p, m.errors());
        if (!s) {
            *ok = false;
            return;
        }
        std::string err;
        if (!ike::parse_proposal(*s, proto, &err)) {
            m.errors().add(n.Mark(), p, err);
            *ok = false;
            return;
        }
        out.push_back(*s);
    });
    if (node.IsSequence() && node.size() == 0) {
        m.errors().add(node.Mark(), m.path(key), "needs at least one proposal");
        *ok = false;
    }
    return out;
}

bool check_identity(MapReader& m, const std::string& key, const std::string& s) {
    std::string err;
    if (!pki::parse_identity(s, &err)) {
        m.errors().add(m.get(key).Mark(), m.path(key), err);
        return false;
    }
    return true;
}

void read_site(const YAML::Node& n, const std::string& path, Errors& e, Cloud& cl, const Config& c,
               bool cloud_has_auth) {
    MapReader m(n, path, e);
    Site s;
    s.where = where_of(n);
    bool ok = m.valid();
    if (auto id = m.str("id", true)) {
        if (!check_identity(m, "id", *id)) ok = false;
        s.id = *id;
        std::string err;
        auto mine = pki::parse_identity(*id, &err);
        for (auto& other : c.clouds)
            for (auto& os : other.sites) {
                auto theirs = pki::parse_identity(os.id, &err);
                if (mine && theirs && pki::identity_matches(*mine, *theirs) && pki::identity_matches(*theirs, *mine)) {
                    e.add(m.get("id").Mark(), path + ".id",
                          fmt::format("site '{}' is already defined in cloud '{}' (line {})", *id, other.name,
                                      os.where.line));
                    ok = false;
                }
            }
        for (auto& os : cl.sites) {
            auto theirs = pki::parse_identity(os.id, &err);
            if (mine && theirs && pki::identity_matches(*mine, *theirs) && pki::identity_matches(*theirs, *mine)) {
                e.add(m.get("id").Mark(), path + ".id",
                      fmt::format("duplicate site '{}' (line {})", *id, os.where.line));
                ok = false;
            }
        }
    } else {
        ok = false;
    }
    if (!m.has("prefixes")) {
        m.get("prefixes");
        if (m.valid()) e.add(n.Mark(), path + ".prefixes", "required key is missing");
        ok = false;
    } else {
        s.prefixes = read_prefixes(m, "prefixes", true, &ok);
        // Cryptokey routing: no two sites of a cloud may hold overlapping
        // prefixes, or one could claim the other's traffic.
        each(m.get("prefixes"), path + ".prefixes", e, [&](const YAML::Node& pn, const std::string& pp) {
            auto pf = Prefix::parse(pn.IsScalar() ? pn.Scalar() : "");
            if (!pf) return;
            for (auto& os : cl.sites)
                for (auto& q : os.prefixes)
                    if (q.contains(*pf) || pf->contains(q)) {
                        e.add(pn.Mark(), pp, fmt::format("{} overlaps {} of site '{}'", pf->str(), q.str(), os.id));
                        ok = false;
                    }
        });
    }
    if (auto p = read_psk(m, &ok)) s.psk = *p;
    if (!cloud_has_auth && s.psk.empty() && ok) {
        e.add(n.Mark(), path, fmt::format("cloud '{}' has neither 'pki' nor 'psk': the site needs a 'psk'", cl.name));
        ok = false;
    }
    if (m.has("critical")) {
        MapReader cr(m.get("critical"), path + ".critical", e);
        each(cr.get("dscp"), path + ".critical.dscp", e, [&](const YAML::Node& dn, const std::string& dp) {
            auto v = as_str(dn, dp, e);
            if (!v) {
                ok = false;
                return;
            }
            int d = dscp_value(*v);
            if (d < 0) {
                e.add(dn.Mark(), dp,
                      fmt::format("'{}' is not a DSCP (0..63, be, ef, va, cs0..cs7, af11..af43)", *v));
                ok = false;
                return;
            }
            s.critical_dscp.push_back(d);
        });
        cr.finish();
    } else {
        m.get("critical");
    }
    m.finish();
    if (ok) cl.sites.push_back(std::move(s));
}

}  // namespace

int dscp_value(const std::string& s) {
    static const std::pair<const char*, int> names[] = {
        {"be", 0},   {"cs0", 0},  {"cs1", 8},  {"cs2", 16}, {"cs3", 24}, {"cs4", 32}, {"cs5", 40},
        {"cs6", 48}, {"cs7", 56}, {"af11", 10}, {"af12", 12}, {"af13", 14}, {"af21", 18}, {"af22", 20},
        {"af23", 22}, {"af31", 26}, {"af32", 28}, {"af33", 30}, {"af41", 34}, {"af42", 36}, {"af43", 38},
        {"ef", 46},  {"va", 44}};
    for (auto& [n, v] : names)
        if (s == n) return v;
    if (s.empty() || s.size() > 2) return -1;
    int v = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9') return -1;
        v = v * 10 + (ch - '0');
    }
    return v <= 63 ? v : -1;
}

void read_clouds(MapReader& top, Config& c) {
    each(top.get("clouds"), "clouds", top.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader m(n, path, top.errors());
        Errors& e = m.errors();
        Cloud cl;
        cl.where = where_of(n);
        bool ok = m.valid();
        if (auto s = m.str("name", true)) {
            if (!std::regex_match(*s, kCloudNameRe)) {
                e.add(m.get("name").Mark(), path + ".name", fmt::format("'{}' is not a valid name", *s));
                ok = false;
            } else if (c.cloud(*s)) {
                e.add(m.get("name").Mark(), path + ".name", fmt::format("duplicate cloud '{}'", *s));
                ok = false;
            }
            cl.name = *s;
        } else {
            ok = false;
        }
        if (auto s = m.str("vrf")) {
            if (!c.vrf(*s)) {
                e.add(m.get("vrf").Mark(), path + ".vrf", fmt::format("unknown VRF '{}' (defined: {})", *s, vrf_list(c)));
                ok = false;
            } else {
                cl.vrf = *s;
            }
        }
        if (m.has("pki")) {
            MapReader p(m.get("pki"), path + ".pki", e);
            PkiFiles f;
            f.where = where_of(m.get("pki"));
            for (auto [key, dst, req] : {std::tuple{"ca", &f.ca, true}, std::tuple{"crl", &f.crl, false},
                                         std::tuple{"cert", &f.cert, true}, std::tuple{"key", &f.key, true}}) {
                if (auto v = p.str(key, req)) {
                    if (v->empty() || (*v)[0] != '/') {
                        e.add(p.get(key).Mark(), p.path(key), "must be an absolute path");
                        ok = false;
                    } else {
                        *dst = *v;
                    }
                } else if (req) {
                    ok = false;
                }
            }
            p.finish();
            cl.pki = f;
        } else {
            m.get("pki");
        }
        if (auto p = read_psk(m, &ok)) cl.psk = *p;
        if (auto s = m.str("id")) {
            if (!check_identity(m, "id", *s)) ok = false;
            cl.id = *s;
        }
        if (m.has("proposals")) {
            MapReader p(m.get("proposals"), path + ".proposals", e);
            cl.ike_proposals = read_proposals(p, "ike", ike::PROTO_IKE, cl.ike_proposals, &ok);
            cl.esp_proposals = read_proposals(p, "esp", ike::PROTO_ESP, cl.esp_proposals, &ok);
            p.finish();
        } else {
            m.get("proposals");
        }
        if (m.has("advertise")) cl.advertise = read_prefixes(m, "advertise", false, &ok);
        else m.get("advertise");
        if (m.has("dpd")) {
            MapReader d(m.get("dpd"), path + ".dpd", e);
            if (auto v = d.integer("interval", 1, 3600)) cl.dpd.interval = int(*v);
            if (auto v = d.integer("retries", 2, 20)) cl.dpd.retries = int(*v);
            d.finish();
        } else {
            m.get("dpd");
        }
        if (m.has("rekey")) {
            MapReader r(m.get("rekey"), path + ".rekey", e);
            if (auto v = r.integer("ike", 60, 30 * 86400)) cl.rekey_ike = int(*v);
            if (auto v = r.integer("child", 30, 30 * 86400)) cl.rekey_child = int(*v);
            r.finish();
        } else {
            m.get("rekey");
        }
        bool has_auth = cl.pki.has_value() || !cl.psk.empty();
        if (ok && cl.pki && !cl.psk.empty()) {
            e.add(n.Mark(), path, "give either 'pki' or 'psk', not both (per-site 'psk' is allowed with 'pki')");
            ok = false;
        }
        Cloud* self = &cl;
        each(m.get("sites"), path + ".sites", e,
             [&](const YAML::Node& sn, const std::string& sp) { read_site(sn, sp, e, *self, c, has_auth); });
        m.finish();
        if (ok) c.clouds.push_back(std::move(cl));
    });
}

void read_ike(MapReader& top, Config& c) {
    MapReader m(top.get("ike"), "ike", top.errors());
    Errors& e = m.errors();
    auto& k = c.ike;
    k.where = where_of(top.get("ike"));
    each(m.get("listen"), "ike.listen", e, [&](const YAML::Node& n, const std::string& p) {
        auto s = as_str(n, p, e);
        if (!s) return;
        if (!IpAddr::parse(*s) && !c.port(*s)) {
            e.add(n.Mark(), p, fmt::format("'{}' is neither an IP address nor a port name", *s));
            return;
        }
        k.listen.push_back(*s);
    });
    if (m.has("ports")) {
        MapReader p(m.get("ports"), "ike.ports", e);
        if (auto v = p.integer("ike", 1, 65535)) k.port_ike = int(*v);
        if (auto v = p.integer("natt", 1, 65535)) k.port_natt = int(*v);
        if (k.port_ike == k.port_natt)
            e.add(p.get("natt").Mark(), "ike.ports.natt", "must differ from ike.ports.ike");
        p.finish();
    } else {
        m.get("ports");
    }
    if (auto v = m.integer("cookie_threshold", 0, 1000000)) k.cookie_threshold = int(*v);
    if (auto v = m.integer("half_open_per_source", 1, 1000000)) k.half_open_per_source = int(*v);
    if (auto v = m.integer("max_half_open", 1, 10000000)) k.max_half_open = int(*v);
    if (auto v = m.integer("fragment_size", 576, 65535)) k.fragment_size = int(*v);
    if (m.has("retransmit")) {
        MapReader r(m.get("retransmit"), "ike.retransmit", e);
        if (auto v = r.integer("timeout_ms", 100, 60000)) k.retransmit_timeout_ms = int(*v);
        if (auto v = r.integer("tries", 1, 20)) k.retransmit_tries = int(*v);
        r.finish();
    } else {
        m.get("retransmit");
    }
    if (auto v = m.integer("keepalive_s", 1, 3600)) k.keepalive_s = int(*v);
    if (auto v = m.integer("delete_on_stop_ms", 0, 30000)) k.delete_on_stop_ms = int(*v);
    m.finish();
}

void read_initiate(MapReader& top, Config& c) {
    each(top.get("initiate"), "initiate", top.errors(), [&](const YAML::Node& n, const std::string& path) {
        MapReader m(n, path, top.errors());
        Errors& e = m.errors();
        Initiate in;
        in.where = where_of(n);
        bool ok = m.valid();
        if (!m.has("peer")) {
            m.get("peer");
            if (m.valid()) e.add(n.Mark(), path + ".peer", "required key is missing");
            ok = false;
        } else if (auto a = as_ip(m.get("peer"), path + ".peer", e)) {
            in.peer = *a;
        } else {
            ok = false;
        }
        const Cloud* cl = nullptr;
        if (auto s = m.str("cloud", true)) {
            cl = c.cloud(*s);
            if (!cl) {
                std::string names;
                for (auto& x : c.clouds) names += (names.empty() ? "" : ", ") + x.name;
                e.add(m.get("cloud").Mark(), path + ".cloud",
                      fmt::format("unknown cloud '{}' (defined: {})", *s, names.empty() ? "none" : names));
                ok = false;
            }
            in.cloud = *s;
        } else {
            ok = false;
        }
        if (auto s = m.str("local_id")) {
            if (!check_identity(m, "local_id", *s)) ok = false;
            in.local_id = *s;
        } else if (cl && !cl->pki && cl->id.empty()) {
            e.add(n.Mark(), path + ".local_id", "required with PSK authentication (the cloud has no 'pki' and no 'id')");
            ok = false;
        }
        if (auto s = m.str("remote_id")) {
            if (!check_identity(m, "remote_id", *s)) ok = false;
            in.remote_id = *s;
        }
        if (!m.has("local_prefixes")) {
            m.get("local_prefixes");
            if (m.valid()) e.add(n.Mark(), path + ".local_prefixes", "required key is missing");
            ok = false;
        } else {
            in.local_prefixes = read_prefixes(m, "local_prefixes", true, &ok);
        }
        if (m.has("remote_prefixes")) in.remote_prefixes = read_prefixes(m, "remote_prefixes", false, &ok);
        else m.get("remote_prefixes");
        // One tunnel per (peer, cloud, identity): an edge may stand in for
        // several sites of one concentrator, each with its own local_id.
        for (auto& o : c.initiate)
            if (ok && o.peer == in.peer && o.cloud == in.cloud && o.local_id == in.local_id) {
                e.add(n.Mark(), path,
                      fmt::format("duplicate of the entry at line {} ({} in cloud '{}'{})", o.where.line, in.peer.str(),
                                  in.cloud, in.local_id.empty() ? "" : " as '" + in.local_id + "'"));
                ok = false;
            }
        m.finish();
        if (ok) c.initiate.push_back(std::move(in));
    });
}

}  // namespace nimbus::config
