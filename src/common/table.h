// A table that renders as aligned text for people and as a JSON array of
// objects for machines: every `show` command builds one of these so the text
// and the `-j` output can never disagree.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nimbus {

class Table {
public:
    struct Col {
        std::string header;  // "Rx pkts"
        std::string key;     // "rx_packets"
        bool right = false;  // right-align (numbers)
    };
    explicit Table(std::vector<Col> cols) : cols_(std::move(cols)) {}

    // Cells are JSON values: numbers stay numbers in -j output.
    void row(std::vector<nlohmann::json> cells) { rows_.push_back(std::move(cells)); }
    size_t size() const { return rows_.size(); }

    std::string text() const;
    nlohmann::json json() const;

private:
    std::vector<Col> cols_;
    std::vector<std::vector<nlohmann::json>> rows_;
};

std::string json_cell_text(const nlohmann::json& v);

// A table cell's age or uptime: 45s, 12m05s, 3h07m, 2d04h.
std::string duration(uint64_t seconds);

}  // namespace nimbus
