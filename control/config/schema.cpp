#include "control/config/schema.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace nimbus::config {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); j++) prev[j] = j;
    for (size_t i = 1; i <= a.size(); i++) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); j++)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

const char* type_name(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map: return "a mapping";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Null: return "nothing";
        case YAML::NodeType::Scalar: return "a scalar";
        default: return "undefined";
    }
}

}  // namespace

void Errors::add(const YAML::Mark& m, const std::string& path, const std::string& msg) {
    if (m.is_null()) list_.push_back(fmt::format("{}: {}: {}", file_, path, msg));
    else list_.push_back(fmt::format("{}:{}:{}: {}: {}", file_, m.line + 1, m.column + 1, path, msg));
}

void Errors::add(const Where& w, const std::string& path, const std::string& msg) {
    if (!w.line) list_.push_back(fmt::format("{}: {}: {}", file_, path, msg));
    else list_.push_back(fmt::format("{}:{}:{}: {}: {}", file_, w.line, w.col, path, msg));
}

Where where_of(const YAML::Node& n) {
    if (!n.IsDefined()) return {};
    auto m = n.Mark();
    if (m.is_null()) return {};
    return Where{m.line + 1, m.column + 1};
}

MapReader::MapReader(const YAML::Node& n, std::string p, Errors& errs)
    : n_(n), path_(std::move(p)), errs_(errs) {
    if (!n.IsDefined() || n.IsNull()) {
        // An empty section ("ha:" with nothing under it) is an empty mapping.
        n_ = YAML::Node(YAML::NodeType::Map);
        valid_ = true;
        return;
    }
    if (!n.IsMap()) {
        errs_.add(n.Mark(), path_.empty() ? "(top level)" : path_,
                  fmt::format("expected a mapping, found {}", type_name(n)));
        return;
    }
    valid_ = true;
    std::set<std::string> seen;  // only for big mappings; small ones are scanned
    for (auto it = n.begin(); it != n.end(); ++it) {
        const YAML::Node key = it->first;  // (it-> is a temporary: copies, not references)
        if (!key.IsScalar()) {
            errs_.add(key.Mark(), path_.empty() ? "(top level)" : path_, "keys must be plain names");
            continue;
        }
        const std::string k = key.Scalar();
        bool dup;
        if (entries_.size() < 16) {
            dup = std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == k; });
        } else {
            if (seen.empty())
                for (auto& e : entries_) seen.insert(e.key);
            dup = !seen.insert(k).second;
        }
        if (dup) errs_.add(key.Mark(), path(k), "duplicate key");
        entries_.push_back(Entry{k, it->second, key.Mark()});
    }
}

YAML::Node MapReader::get(const std::string& key) {
    known_.push_back(key);
    if (!valid_) return YAML::Node();
    for (auto& e : entries_)
        if (e.key == key) return e.value;  // the first, as yaml-cpp's lookup did
    return YAML::Node();
}

bool MapReader::has(const std::string& key) {
    auto n = get(key);
    return n.IsDefined() && !n.IsNull();
}

std::optional<std::string> MapReader::str(const std::string& key, bool required) {
    auto n = get(key);
    if (!n.IsDefined() || n.IsNull()) {
        if (required && valid_) errs_.add(n_.Mark(), path(key), "required key is missing");
        return std::nullopt;
    }
    return as_str(n, path(key), errs_);
}

std::optional<int64_t> MapReader::integer(const std::string& key, int64_t min, int64_t max,
                                          bool required) {
    auto n = get(key);
    if (!n.IsDefined() || n.IsNull()) {
        if (required && valid_) errs_.add(n_.Mark(), path(key), "required key is missing");
        return std::nullopt;
    }
    if (!n.IsScalar()) {
        errs_.add(n.Mark(), path(key), fmt::format("expected an integer, found {}", type_name(n)));
        return std::nullopt;
    }
    const std::string& s = n.Scalar();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
        errs_.add(n.Mark(), path(key), fmt::format("expected an integer, found '{}'", s));
        return std::nullopt;
    }
    if (v < min || v > max) {
        errs_.add(n.Mark(), path(key), fmt::format("{} is out of range {}..{}", v, min, max));
        return std::nullopt;
    }
    return v;
}

std::optional<bool> MapReader::boolean(const std::string& key) {
    auto n = get(key);
    if (!n.IsDefined() || n.IsNull()) return std::nullopt;
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) return n.Scalar() == "true";
    errs_.add(n.Mark(), path(key),
              fmt::format("expected true or false, found '{}'", n.IsScalar() ? n.Scalar() : type_name(n)));
    return std::nullopt;
}

std::optional<std::vector<std::string>> MapReader::str_list(const std::string& key) {
    auto n = get(key);
    if (!n.IsDefined() || n.IsNull()) return std::nullopt;
    std::vector<std::string> out;
    bool ok = true;
    each(n, path(key), errs_, [&](const YAML::Node& e, const std::string& p) {
        auto s = as_str(e, p, errs_);
        if (s) out.push_back(*s);
        else ok = false;
    });
    if (!n.IsSequence() || !ok) return std::nullopt;
    return out;
}

std::optional<std::string> MapReader::choice(const std::string& key,
                                             const std::vector<std::string>& choices, bool required) {
    auto s = str(key, required);
    if (!s) return s;
    if (std::find(choices.begin(), choices.end(), *s) == choices.end()) {
        std::string all;
        for (auto& c : choices) all += (all.empty() ? "" : ", ") + c;
        errs_.add(get(key).Mark(), path(key), fmt::format("'{}' is not one of: {}", *s, all));
        return std::nullopt;
    }
    return s;
}

void MapReader::finish() {
    if (!valid_) return;
    for (auto& e : entries_) {
        const std::string& k = e.key;
        if (std::find(known_.begin(), known_.end(), k) != known_.end()) continue;
        std::string best;
        size_t bd = 3;
        for (auto& c : known_) {
            size_t d = edit_distance(k, c);
            // A key that is the start of a known one ("idle_sleep") counts as close.
            if (k.size() >= 3 && c.compare(0, k.size(), k) == 0) d = std::min<size_t>(d, 1);
            // A candidate that would be rewritten entirely ("bar" -> "ha") is no suggestion.
            if (d >= c.size()) continue;
            if (d < bd) bd = d, best = c;
        }
        errs_.add(e.mark, path(k),
                  best.empty() ? std::string("unknown key")
                               : fmt::format("unknown key (did you mean '{}'?)", best));
    }
}

std::optional<std::string> as_str(const YAML::Node& n, const std::string& path, Errors& e) {
    if (!n.IsScalar()) {
        e.add(n.Mark(), path, fmt::format("expected a string, found {}", type_name(n)));
        return std::nullopt;
    }
    return n.Scalar();
}

std::optional<Prefix> as_prefix(const YAML::Node& n, const std::string& path, Errors& e) {
    auto s = as_str(n, path, e);
    if (!s) return std::nullopt;
    auto p = Prefix::parse(*s);
    if (!p) {
        auto loose = Prefix::parse(*s, true);
        if (loose)
            e.add(n.Mark(), path,
                  fmt::format("'{}' has host bits set (did you mean {}?)", *s, loose->str()));
        else
            e.add(n.Mark(), path, fmt::format("'{}' is not a valid IP prefix", *s));
        return std::nullopt;
    }
    return p;
}

std::optional<IfAddr> as_ifaddr(const YAML::Node& n, const std::string& path, Errors& e) {
    auto s = as_str(n, path, e);
    if (!s) return std::nullopt;
    auto slash = s->find('/');
    auto p = Prefix::parse(*s, true);
    if (!p || slash == std::string::npos) {
        e.add(n.Mark(), path, fmt::format("'{}' is not a valid interface address (ADDRESS/LENGTH)", *s));
        return std::nullopt;
    }
    auto a = IpAddr::parse(s->substr(0, slash));
    IfAddr ia{*a, p->len};
    if (a->is_multicast() || a->is_zero()) {
        e.add(n.Mark(), path, fmt::format("'{}' cannot be an interface address", *s));
        return std::nullopt;
    }
    return ia;
}

std::optional<IpAddr> as_ip(const YAML::Node& n, const std::string& path, Errors& e) {
    auto s = as_str(n, path, e);
    if (!s) return std::nullopt;
    auto a = IpAddr::parse(*s);
    if (!a) {
        e.add(n.Mark(), path, fmt::format("'{}' is not a valid IP address", *s));
        return std::nullopt;
    }
    return a;
}

void each(const YAML::Node& n, const std::string& path, Errors& e,
          const std::function<void(const YAML::Node&, const std::string&)>& f) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!n.IsSequence()) {
        e.add(n.Mark(), path, fmt::format("expected a list, found {}", type_name(n)));
        return;
    }
    for (size_t i = 0; i < n.size(); i++) f(n[i], fmt::format("{}[{}]", path, i));
}

}  // namespace nimbus::config
