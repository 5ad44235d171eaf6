#include "control/config/tree.h"

#include <stdexcept>
#include <unordered_map>

#include <yaml-cpp/yaml.h>

namespace nimbus::config {

// Builds the arrays depth-first; a node's children get a contiguous run of
// kids_ reserved before they are added.
struct Tree::Builder {
    Tree& t;
    // Short strings are mostly keys and repeated values ("name", "corp"):
    // kept once. The map goes when the tree is built.
    std::unordered_map<std::string, Span> short_;
    std::unordered_map<std::string, uint32_t> tags;

    Span keep(const std::string& s) {
        constexpr size_t kShort = 16;
        if (s.size() <= kShort) {
            auto it = short_.find(s);
            if (it != short_.end()) return it->second;
        }
        if (t.chars_.size() + s.size() > UINT32_MAX) throw std::length_error("config document over 4 GiB");
        Span sp{uint32_t(t.chars_.size()), uint32_t(s.size())};
        t.chars_ += s;
        if (s.size() <= kShort) short_.emplace(s, sp);
        return sp;
    }
    uint32_t tag(const std::string& s) {
        auto [it, fresh] = tags.emplace(s, uint32_t(t.tags_.size()));
        if (fresh) t.tags_.push_back(s);
        return it->second;
    }
    Id add(const YAML::Node& n) {
        if (t.nodes_.size() >= kNone) throw std::length_error("config document over 4 billion nodes");
        Id id = Id(t.nodes_.size());
        t.nodes_.emplace_back();
        Node x;
        x.tag = tag(n.Tag());
        switch (n.Type()) {
            case YAML::NodeType::Scalar:
                x.kind = Kind::scalar;
                x.text = keep(n.Scalar());
                break;
            case YAML::NodeType::Sequence:
            case YAML::NodeType::Map: {
                bool map = n.IsMap();
                x.kind = map ? Kind::map : Kind::sequence;
                x.count = uint32_t(n.size());
                x.first = uint32_t(t.kids_.size());
                t.kids_.resize(t.kids_.size() + (map ? 2 : 1) * size_t(x.count));
                uint32_t i = x.first;
                for (auto it = n.begin(); it != n.end(); ++it) {
                    if (map) {
                        Id k = add(it->first);
                        t.kids_[i++] = k;
                        Id v = add(it->second);
                        t.kids_[i++] = v;
                    } else {
                        Id v = add(*it);
                        t.kids_[i++] = v;
                    }
                }
                break;
            }
            default: break;  // null (an undefined root: an empty document)
        }
        t.nodes_[id] = x;
        return id;
    }
};

Tree Tree::of(const YAML::Node& root) {
    Tree t;
    t.nodes_.clear();
    {
        Builder b{t, {}, {}};
        b.add(root);
    }
    t.nodes_.shrink_to_fit();
    t.kids_.shrink_to_fit();
    t.chars_.shrink_to_fit();
    return t;
}

Tree::Id Tree::get(Id map, std::string_view k) const {
    if (!is(map, Kind::map)) return kNone;
    for (uint32_t i = 0; i < size(map); i++)
        if (is(key(map, i), Kind::scalar) && scalar(key(map, i)) == k) return value(map, i);
    return kNone;
}

size_t Tree::bytes() const {
    size_t n = nodes_.capacity() * sizeof(Node) + kids_.capacity() * sizeof(Id) + chars_.capacity();
    for (auto& s : tags_) n += sizeof(s) + s.capacity();
    return n;
}

}  // namespace nimbus::config
