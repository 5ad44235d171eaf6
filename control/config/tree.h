// A YAML document as diff() and redact() (diff.h) need it, and no more:
// every node's kind, tag and scalar, and its children, in three flat
// arrays. nimbusd keeps the running config's document to diff the next
// apply against; as yaml-cpp nodes, 100,000 tunnels' document took 1.4 GB
// (~440 bytes a node, 3.0 million nodes); here it is 24 bytes a node, 4 a
// child and the scalars' characters: 106 MB.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace YAML {
class Node;
}

namespace nimbus::config {

class Tree {
public:
    enum class Kind : uint8_t { null, scalar, sequence, map };
    using Id = uint32_t;
    static constexpr Id kNone = UINT32_MAX;  // no such node (a map without the key)

    // The document yaml-cpp read; aliases are copied where they are used.
    // Throws std::length_error past 4 GiB of scalars (yaml-cpp would need
    // ~40 times that to read such a file in the first place) or 256 tags.
    static Tree of(const YAML::Node& root);
    Tree() : nodes_(1), tags_(1) {}  // an empty document: a null root (untagged)

    Id root() const { return 0; }
    Kind kind(Id n) const { return nodes_[n].kind; }
    bool is(Id n, Kind k) const { return n != kNone && nodes_[n].kind == k; }
    // The scalar ("" unless a scalar) and the tag as yaml-cpp reports it
    // ("?" for a plain scalar, "!" for a quoted one).
    std::string_view scalar(Id n) const { return str(nodes_[n].text); }
    std::string_view tag(Id n) const { return tags_[nodes_[n].tag]; }
    // Elements of a sequence, pairs of a map.
    uint32_t size(Id n) const { return nodes_[n].count; }
    Id item(Id seq, uint32_t i) const { return kids_[nodes_[seq].first + i]; }
    Id key(Id map, uint32_t i) const { return kids_[nodes_[map].first + 2 * i]; }
    Id value(Id map, uint32_t i) const { return kids_[nodes_[map].first + 2 * i + 1]; }
    // The value of the first pair whose key is that scalar; kNone if none.
    Id get(Id map, std::string_view k) const;

    size_t nodes() const { return nodes_.size(); }
    size_t bytes() const;  // what it holds on the heap

private:
    struct Span {
        uint32_t off = 0, len = 0;
    };
    struct Node {
        Kind kind = Kind::null;
        uint32_t tag = 0;               // in tags_
        uint32_t first = 0, count = 0;  // children in kids_ (a map's: key, value, key, ...)
        Span text;                      // in chars_
    };
    static_assert(sizeof(Node) == 24);
    std::string_view str(Span s) const { return std::string_view(chars_).substr(s.off, s.len); }
    struct Builder;

    std::vector<Node> nodes_;
    std::vector<Id> kids_;
    std::string chars_;
    std::vector<std::string> tags_;  // the few distinct tags; tags_[0] is ""
};

}  // namespace nimbus::config
