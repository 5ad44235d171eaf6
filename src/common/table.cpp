#include "src/common/table.h"

#include <algorithm>

#include <fmt/format.h>

namespace nimbus {

std::string json_cell_text(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return "-";
    if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
    if (v.is_array()) {
        std::string s;
        for (auto& e : v) {
            if (!s.empty()) s += ",";
            s += json_cell_text(e);
        }
        return s.empty() ? "-" : s;
    }
    return v.dump();
}

std::string Table::text() const {
    std::vector<size_t> w(cols_.size());
    for (size_t i = 0; i < cols_.size(); i++) w[i] = cols_[i].header.size();
    std::vector<std::vector<std::string>> cells;
    cells.reserve(rows_.size());
    for (auto& r : rows_) {
        auto& out = cells.emplace_back();
        for (size_t i = 0; i < cols_.size(); i++) {
            out.push_back(i < r.size() ? json_cell_text(r[i]) : "");
            w[i] = std::max(w[i], out.back().size());
        }
    }
    std::string s;
    auto line = [&](const std::vector<std::string>& v) {
        std::string l;
        for (size_t i = 0; i < cols_.size(); i++) {
            const std::string& c = v[i];
            size_t pad = w[i] - c.size();
            if (cols_[i].right) l.append(pad, ' ').append(c);
            else l.append(c).append(i + 1 < cols_.size() ? pad : 0, ' ');
            if (i + 1 < cols_.size()) l += "  ";
        }
        while (!l.empty() && l.back() == ' ') l.pop_back();
        s += l + "\n";
    };
    std::vector<std::string> hdr;
    for (auto& c : cols_) hdr.push_back(c.header);
    line(hdr);
    for (auto& r : cells) line(r);
    return s;
}

nlohmann::json Table::json() const {
    auto a = nlohmann::json::array();
    for (auto& r : rows_) {
        nlohmann::json o = nlohmann::json::object();
        for (size_t i = 0; i < cols_.size() && i < r.size(); i++) o[cols_[i].key] = r[i];
        a.push_back(std::move(o));
    }
    return a;
}

std::string duration(uint64_t s) {
    if (s < 120) return fmt::format("{}s", s);
    if (s < 7200) return fmt::format("{}m{:02}s", s / 60, s % 60);
    if (s < 2 * 86400) return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
    return fmt::format("{}d{:02}h", s / 86400, (s / 3600) % 24);
}

}  // namespace nimbus
