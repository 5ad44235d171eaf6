#include "control/config/diff.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

namespace nimbus::config {

namespace {

const char* const kRedacted = "<redacted>";

std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

YAML::Node redacted(const YAML::Node& n) {
    if (n.IsMap()) {
        YAML::Node out(YAML::NodeType::Map);
        for (auto it = n.begin(); it != n.end(); ++it) {
            std::string k = it->first.IsScalar() ? it->first.Scalar() : "";
            YAML::Node key = YAML::Clone(it->first);
            YAML::Node val = is_secret_key(k) && !it->second.IsMap() && !it->second.IsSequence()
                                 ? YAML::Node(kRedacted)
                                 : redacted(it->second);
            out.force_insert(key, val);
        }
        return out;
    }
    if (n.IsSequence()) {
        YAML::Node out(YAML::NodeType::Sequence);
        for (auto& e : n) out.push_back(redacted(e));
        return out;
    }
    return YAML::Clone(n);
}

std::string flow(const YAML::Node& n) {
    YAML::Emitter e;
    e.SetMapFormat(YAML::Flow);
    e.SetSeqFormat(YAML::Flow);
    e << n;
    return e.c_str();
}

// The key a list element is known by, if it has one.
std::string element_key(const YAML::Node& n) {
    if (!n.IsMap()) return "";
    for (const char* k : {"name", "id", "prefix", "spi"})
        if (n[k] && n[k].IsScalar()) return n[k].Scalar();
    return "";
}

// Whether two trees are the same, without emitting them: an apply that adds
// one tunnel to 100,000 compares 100,000 unchanged ones, and emitting each
// scalar to compare it (below) took seconds on the control thread.
bool same(const YAML::Node& a, const YAML::Node& b) {
    if (a.Type() != b.Type()) return false;
    switch (a.Type()) {
        case YAML::NodeType::Scalar: return a.Scalar() == b.Scalar();
        case YAML::NodeType::Sequence: {
            if (a.size() != b.size()) return false;
            for (size_t i = 0; i < a.size(); i++)
                if (!same(a[i], b[i])) return false;
            return true;
        }
        case YAML::NodeType::Map: {
            if (a.size() != b.size()) return false;
            for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
                if (!same(ia->first, ib->first) || !same(ia->second, ib->second)) return false;
            return true;  // (same keys in another order count as a change: walk() then finds none)
        }
        default: return true;  // both null or undefined
    }
}

// A subtree as a diff line shows it. `secret`: the value of a secret key
// (psk, key ...), whose scalar is never shown.
std::string shown(const YAML::Node& n, bool secret) {
    if (secret && !n.IsMap() && !n.IsSequence()) return kRedacted;
    return flow(redacted(n));
}

// Only the subtrees that differ are redacted and emitted: the trees are not
// copied (at 20,000 tunnels a redacted copy of each took seconds).
void walk(const YAML::Node& a, const YAML::Node& b, const std::string& path, std::vector<std::string>& out,
          bool secret = false) {
    bool ad = a.IsDefined() && !a.IsNull(), bd = b.IsDefined() && !b.IsNull();
    if (!ad && !bd) return;
    if (ad && bd && same(a, b)) return;
    if (!ad) {
        out.push_back(fmt::format("+ {}: {}", path, shown(b, secret)));
        return;
    }
    if (!bd) {
        out.push_back(fmt::format("- {}: {}", path, shown(a, secret)));
        return;
    }
    if (a.IsMap() && b.IsMap()) {
        std::set<std::string> keys;
        for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it->first.Scalar());
        for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it->first.Scalar());
        for (auto& k : keys) walk(a[k], b[k], path.empty() ? k : path + "." + k, out, is_secret_key(k));
        return;
    }
    if (a.IsSequence() && b.IsSequence()) {
        bool keyed = true;
        for (auto& e : a) keyed = keyed && !element_key(e).empty();
        for (auto& e : b) keyed = keyed && !element_key(e).empty();
        if (keyed) {
            std::vector<std::string> order;
            std::map<std::string, YAML::Node> am, bm;
            for (auto& e : a) {
                am.emplace(element_key(e), static_cast<const YAML::Node&>(e));
                order.push_back(element_key(e));
            }
            for (auto& e : b) {
                bm.emplace(element_key(e), static_cast<const YAML::Node&>(e));
                if (!am.count(element_key(e))) order.push_back(element_key(e));
            }
            for (auto& k : order) {
                auto ai = am.find(k), bi = bm.find(k);
                walk(ai != am.end() ? ai->second : YAML::Node(), bi != bm.end() ? bi->second : YAML::Node(),
                     fmt::format("{}[{}]", path, k), out);
            }
            return;
        }
        // Plain lists (addresses, prefixes): as sets of elements.
        std::vector<std::string> as, bs;
        for (auto& e : a) as.push_back(shown(e, false));
        for (auto& e : b) bs.push_back(shown(e, false));
        for (auto& e : as)
            if (std::find(bs.begin(), bs.end(), e) == bs.end()) out.push_back(fmt::format("- {}: {}", path, e));
        for (auto& e : bs)
            if (std::find(as.begin(), as.end(), e) == as.end()) out.push_back(fmt::format("+ {}: {}", path, e));
        return;
    }
    std::string fa = shown(a, secret), fb = shown(b, secret);
    if (fa != fb) out.push_back(fmt::format("~ {}: {} -> {}", path, fa, fb));
    else if (secret) out.push_back(fmt::format("~ {}: {} (changed)", path, kRedacted));
}

bool load(const std::string& text, YAML::Node* out) {
    try {
        *out = YAML::Load(text);
        return true;
    } catch (const YAML::Exception&) {
        return false;
    }
}

}  // namespace

bool is_secret_key(const std::string& key) {
    static const std::set<std::string> k = {"psk", "key", "secret", "password", "passphrase", "private_key"};
    return k.count(lower(key)) > 0;
}

std::string redact(const std::string& text) {
    YAML::Node n;
    if (!load(text, &n)) return "# (config text could not be parsed; not shown)\n";
    return redact(n);
}

namespace {
// The tree as `emitter << node` writes it (what yaml-cpp's EmitFromEvents
// does with the node's events) in block style, secret values replaced on
// the way: no redacted copy of the tree is built (at 20,000 tunnels building
// one took a second of an apply). Block style also because yaml-cpp writes
// "::/0" unquoted in flow style, which no parser reads back.
void emit_redacted(YAML::Emitter& e, const YAML::Node& n, bool secret) {
    auto props = [&] {
        const std::string& tag = n.Tag();
        if (!tag.empty() && tag != "?" && tag != "!") e << YAML::VerbatimTag(tag);
    };
    if (secret) {
        e << kRedacted;
        return;
    }
    switch (n.Type()) {
        case YAML::NodeType::Map:
            props();
            e << YAML::BeginMap;
            for (auto it = n.begin(); it != n.end(); ++it) {
                e << YAML::Key;
                emit_redacted(e, it->first, false);
                e << YAML::Value;
                emit_redacted(e, it->second, it->first.IsScalar() && is_secret_key(it->first.Scalar()) &&
                                                 !it->second.IsMap() && !it->second.IsSequence());
            }
            e << YAML::EndMap;
            return;
        case YAML::NodeType::Sequence:
            props();
            e << YAML::BeginSeq;
            for (auto& x : n) emit_redacted(e, x, false);
            e << YAML::EndSeq;
            return;
        case YAML::NodeType::Scalar:
            props();
            e << n.Scalar();
            return;
        default:
            e << YAML::Null;
            return;
    }
}
}  // namespace

std::string redact(const YAML::Node& root) {
    YAML::Emitter e;
    emit_redacted(e, root, false);
    return std::string(e.c_str()) + "\n";
}

std::vector<std::string> diff(const std::string& old_yaml, const std::string& new_yaml) {
    YAML::Node a, b;
    if (!load(old_yaml, &a) || !load(new_yaml, &b)) return {"! one of the configs could not be parsed"};
    return diff(a, b);
}

std::vector<std::string> diff(const YAML::Node& a, const YAML::Node& b) {
    std::vector<std::string> out;
    walk(a, b, "", out);
    return out;
}

std::vector<std::string> changed_sections(const std::string& old_yaml, const std::string& new_yaml) {
    YAML::Node a, b;
    std::vector<std::string> out;
    if (!load(old_yaml, &a) || !load(new_yaml, &b)) return {"(unparsable)"};
    std::set<std::string> keys;
    if (a.IsMap())
        for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it->first.Scalar());
    if (b.IsMap())
        for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it->first.Scalar());
    for (auto& k : keys) {
        std::vector<std::string> d;
        walk(a.IsMap() ? a[k] : YAML::Node(), b.IsMap() ? b[k] : YAML::Node(), k, d);
        if (!d.empty()) out.push_back(k);
    }
    return out;
}

std::string hash(const std::string& text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
    std::string s;
    for (unsigned i = 0; i < len; i++) s += fmt::format("{:02x}", md[i]);
    return s;
}

}  // namespace nimbus::config
