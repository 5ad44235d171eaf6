// Strict schema reading on top of yaml-cpp: typed getters that record one
// error per problem with file:line:column and the key path, and reject keys
// the schema does not know. Each config section is read with a MapReader;
// finish() reports what was left unread as unknown.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "control/config/config.h"

namespace nimbus::config {

class Errors {
public:
    explicit Errors(std::string file) : file_(std::move(file)) {}
    void add(const YAML::Mark& m, const std::string& path, const std::string& msg);
    void add(const Where& w, const std::string& path, const std::string& msg);
    std::vector<std::string>& list() { return list_; }
    bool empty() const { return list_.empty(); }

private:
    std::string file_;
    std::vector<std::string> list_;
};

Where where_of(const YAML::Node& n);

// Reads one YAML mapping. Keys not asked for by the time finish() runs are
// unknown and reported, with a suggestion when one is close.
class MapReader {
public:
    MapReader(const YAML::Node& n, std::string p, Errors& errs);
    bool valid() const { return valid_; }

    YAML::Node get(const std::string& key);  // undefined node if absent
    bool has(const std::string& key);

    std::optional<std::string> str(const std::string& key, bool required = false);
    std::optional<int64_t> integer(const std::string& key, int64_t min, int64_t max,
                                   bool required = false);
    std::optional<bool> boolean(const std::string& key);
    std::optional<std::vector<std::string>> str_list(const std::string& key);
    // One of `choices`.
    std::optional<std::string> choice(const std::string& key, const std::vector<std::string>& choices,
                                      bool required = false);

    std::string path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
    Errors& errors() { return errs_; }
    const YAML::Node& node() const { return n_; }
    void finish();

private:
    YAML::Node n_;
    std::string path_;
    Errors& errs_;
    std::vector<std::string> known_;
    bool valid_ = false;
    // The mapping's entries with plain keys, read once: a lookup through
    // yaml-cpp's iterators builds two nodes per entry it passes, and a
    // 100,000-tunnel config does a million lookups.
    struct Entry {
        std::string key;
        YAML::Node value;
        YAML::Mark mark;  // of the key
    };
    std::vector<Entry> entries_;
};

// Scalar helpers usable on list elements too.
std::optional<std::string> as_str(const YAML::Node& n, const std::string& path, Errors& e);
std::optional<Prefix> as_prefix(const YAML::Node& n, const std::string& path, Errors& e);
std::optional<IfAddr> as_ifaddr(const YAML::Node& n, const std::string& path, Errors& e);
std::optional<IpAddr> as_ip(const YAML::Node& n, const std::string& path, Errors& e);
// Iterates a sequence (error if not one); f(element, "key[i]").
void each(const YAML::Node& n, const std::string& path, Errors& e,
          const std::function<void(const YAML::Node&, const std::string&)>& f);

}  // namespace nimbus::config
