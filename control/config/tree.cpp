#include "control/config/tree.h"

#include <stdexcept>

#include <yaml-cpp/yaml.h>

namespace nimbus::config {

// Builds the arrays depth-first; a node's children get a contiguous run of
// kids_ reserved before they are added.
struct Tree::Builder {
    Tree& t;

    Span keep(const std::string& s) {
        if (t.chars_.size() + s.size() > UINT32_MAX) throw std::length_error("config document over 4 GiB");
        Span sp{uint32_t(t.chars_.size()), uint32_t(s.size())};
        t.chars_ += s;
        return sp;
    }
    // A handful of distinct tags ("?" plain, "!" quoted, the odd "!!str").
    uint32_t tag(const std::string& s) {
        for (uint32_t i = 0; i < t.tags_.size(); i++)
            if (t.tags_[i] == s) return i;
        if (t.tags_.size() >= 256) throw std::length_error("config document with over 256 distinct tags");
        t.tags_.push_back(s);
        return uint32_t(t.tags_.size() - 1);
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
    t.nodes_.clear();  // (tags_ keeps its "")
    {
        Builder b{t};
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
