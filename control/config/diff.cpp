#include "control/config/diff.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

namespace nimbus::config {

namespace {

const char* const kRedacted = "<redacted>";
using K = Tree::Kind;
using Id = Tree::Id;

std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A subtree as the emitter writes it, secret values replaced on the way (no
// redacted copy is built: at 20,000 tunnels building one took a second of
// an apply). `secret`: n is the value of a secret key (psk, key ...), all
// of which is replaced, whatever it is (a list of keys shows none). Tags
// as yaml-cpp's own node emitter writes them (none for "?" and "!").
void emit(YAML::Emitter& e, const Tree& t, Id n, bool secret) {
    if (secret) {
        e << kRedacted;
        return;
    }
    auto props = [&] {
        std::string_view tag = t.tag(n);
        if (!tag.empty() && tag != "?" && tag != "!") e << YAML::VerbatimTag(std::string(tag));
    };
    switch (t.kind(n)) {
        case K::map:
            props();
            e << YAML::BeginMap;
            for (uint32_t i = 0; i < t.size(n); i++) {
                Id k = t.key(n, i), v = t.value(n, i);
                e << YAML::Key;
                emit(e, t, k, false);
                e << YAML::Value;
                emit(e, t, v, t.is(k, K::scalar) && is_secret_key(std::string(t.scalar(k))));
            }
            e << YAML::EndMap;
            return;
        case K::sequence:
            props();
            e << YAML::BeginSeq;
            for (uint32_t i = 0; i < t.size(n); i++) emit(e, t, t.item(n, i), false);
            e << YAML::EndSeq;
            return;
        case K::scalar:
            props();
            e << std::string(t.scalar(n));
            return;
        default:
            e << YAML::Null;
            return;
    }
}

// The key a list element is known by, if it has one.
std::string_view element_key(const Tree& t, Id n) {
    for (const char* k : {"name", "id", "prefix", "spi"}) {
        Id v = t.get(n, k);
        if (t.is(v, K::scalar)) return t.scalar(v);
    }
    return {};
}

// Whether two subtrees are the same, without emitting them: an apply that
// adds one tunnel to 100,000 compares 100,000 unchanged ones, and emitting
// each scalar to compare it (below) took seconds.
bool same(const Tree& ta, Id a, const Tree& tb, Id b) {
    if (ta.kind(a) != tb.kind(b)) return false;
    switch (ta.kind(a)) {
        case K::scalar: return ta.scalar(a) == tb.scalar(b);
        case K::sequence:
            if (ta.size(a) != tb.size(b)) return false;
            for (uint32_t i = 0; i < ta.size(a); i++)
                if (!same(ta, ta.item(a, i), tb, tb.item(b, i))) return false;
            return true;
        case K::map:
            if (ta.size(a) != tb.size(b)) return false;
            for (uint32_t i = 0; i < ta.size(a); i++)
                if (!same(ta, ta.key(a, i), tb, tb.key(b, i)) || !same(ta, ta.value(a, i), tb, tb.value(b, i)))
                    return false;
            return true;  // (same keys in another order count as a change: walk() then finds none)
        default: return true;  // both null
    }
}

// A subtree as a diff line shows it, in flow style. `secret`: the value of
// a secret key (or inside one), never shown.
std::string shown(const Tree& t, Id n, bool secret) {
    if (secret) return kRedacted;
    YAML::Emitter e;
    e.SetMapFormat(YAML::Flow);
    e.SetSeqFormat(YAML::Flow);
    emit(e, t, n, false);
    return e.c_str();
}

struct Walk {
    const Tree& ta;
    const Tree& tb;
    std::vector<std::string>& out;

    // Only the subtrees that differ are emitted.
    void operator()(Id a, Id b, const std::string& path, bool secret = false) {
        bool ad = a != Tree::kNone && ta.kind(a) != K::null, bd = b != Tree::kNone && tb.kind(b) != K::null;
        if (!ad && !bd) return;
        if (ad && bd && same(ta, a, tb, b)) return;
        if (!ad) {
            out.push_back(fmt::format("+ {}: {}", path, shown(tb, b, secret)));
            return;
        }
        if (!bd) {
            out.push_back(fmt::format("- {}: {}", path, shown(ta, a, secret)));
            return;
        }
        if (ta.is(a, K::map) && tb.is(b, K::map)) {
            std::set<std::string_view> keys;
            for (uint32_t i = 0; i < ta.size(a); i++) keys.insert(ta.scalar(ta.key(a, i)));
            for (uint32_t i = 0; i < tb.size(b); i++) keys.insert(tb.scalar(tb.key(b, i)));
            for (auto k : keys)
                (*this)(ta.get(a, k), tb.get(b, k), path.empty() ? std::string(k) : path + "." + std::string(k),
                        secret || is_secret_key(std::string(k)));
            return;
        }
        if (ta.is(a, K::sequence) && tb.is(b, K::sequence)) {
            bool keyed = true;
            for (uint32_t i = 0; keyed && i < ta.size(a); i++) keyed = !element_key(ta, ta.item(a, i)).empty();
            for (uint32_t i = 0; keyed && i < tb.size(b); i++) keyed = !element_key(tb, tb.item(b, i)).empty();
            if (keyed) {
                std::vector<std::string_view> order;
                std::map<std::string_view, Id> am, bm;
                for (uint32_t i = 0; i < ta.size(a); i++) {
                    std::string_view k = element_key(ta, ta.item(a, i));
                    am.emplace(k, ta.item(a, i));
                    order.push_back(k);
                }
                for (uint32_t i = 0; i < tb.size(b); i++) {
                    std::string_view k = element_key(tb, tb.item(b, i));
                    bm.emplace(k, tb.item(b, i));
                    if (!am.count(k)) order.push_back(k);
                }
                for (auto k : order) {
                    auto ai = am.find(k), bi = bm.find(k);
                    (*this)(ai != am.end() ? ai->second : Tree::kNone, bi != bm.end() ? bi->second : Tree::kNone,
                            fmt::format("{}[{}]", path, k), secret);
                }
                return;
            }
            if (secret) {
                out.push_back(fmt::format("~ {}: {} (changed)", path, kRedacted));
                return;
            }
            // Plain lists (addresses, prefixes): as sets of elements.
            std::vector<std::string> as, bs;
            for (uint32_t i = 0; i < ta.size(a); i++) as.push_back(shown(ta, ta.item(a, i), false));
            for (uint32_t i = 0; i < tb.size(b); i++) bs.push_back(shown(tb, tb.item(b, i), false));
            for (auto& e : as)
                if (std::find(bs.begin(), bs.end(), e) == bs.end()) out.push_back(fmt::format("- {}: {}", path, e));
            for (auto& e : bs)
                if (std::find(as.begin(), as.end(), e) == as.end()) out.push_back(fmt::format("+ {}: {}", path, e));
            return;
        }
        std::string fa = shown(ta, a, secret), fb = shown(tb, b, secret);
        if (fa != fb) out.push_back(fmt::format("~ {}: {} -> {}", path, fa, fb));
        else if (secret) out.push_back(fmt::format("~ {}: {} (changed)", path, kRedacted));
    }
};

bool load(const std::string& text, Tree* out) {
    try {
        *out = Tree::of(YAML::Load(text));
        return true;
    } catch (const YAML::Exception&) {
        return false;
    } catch (const std::length_error&) {
        return false;
    }
}

}  // namespace

bool is_secret_key(const std::string& key) {
    static const std::set<std::string> k = {"psk", "key", "secret", "password", "passphrase", "private_key"};
    return k.count(lower(key)) > 0;
}

std::string redact(const std::string& text) {
    Tree n;
    if (!load(text, &n)) return "# (config text could not be parsed; not shown)\n";
    return redact(n);
}

// Block style: yaml-cpp writes "::/0" unquoted in flow style, which no
// parser reads back.
std::string redact(const Tree& doc) {
    YAML::Emitter e;
    emit(e, doc, doc.root(), false);
    return std::string(e.c_str()) + "\n";
}

std::vector<std::string> diff(const std::string& old_yaml, const std::string& new_yaml) {
    Tree a, b;
    if (!load(old_yaml, &a) || !load(new_yaml, &b)) return {"! one of the configs could not be parsed"};
    return diff(a, b);
}

std::vector<std::string> diff(const Tree& a, const Tree& b) {
    std::vector<std::string> out;
    Walk{a, b, out}(a.root(), b.root(), "");
    return out;
}

std::vector<std::string> changed_sections(const std::string& old_yaml, const std::string& new_yaml) {
    Tree a, b;
    std::vector<std::string> out;
    if (!load(old_yaml, &a) || !load(new_yaml, &b)) return {"(unparsable)"};
    std::set<std::string_view> keys;
    for (const Tree* t : {&a, &b})
        if (t->is(t->root(), K::map))
            for (uint32_t i = 0; i < t->size(t->root()); i++) keys.insert(t->scalar(t->key(t->root(), i)));
    for (auto k : keys) {
        std::vector<std::string> d;
        Walk{a, b, d}(a.get(a.root(), k), b.get(b.root(), k), std::string(k));
        if (!d.empty()) out.push_back(std::string(k));
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
