// Prometheus text exposition (format 0.0.4), written by hand: Debian 12 has
// no prometheus-cpp. Features register collectors next to their code; a
// scrape runs them all on the control thread.
//
// Naming follows Prometheus conventions: nimbus_<area>_<what>[_total|_seconds],
// base units, counters end in _total. Label cardinality stays bounded: per
// port, per drop reason, per class, per cloud; per-tunnel series only when a
// feature says so.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace nimbus::mgmt {

class MetricsWriter {
public:
    using Labels = std::vector<std::pair<std::string, std::string>>;
    // Starts a family: "# HELP" and "# TYPE" (counter, gauge, info as gauge).
    void family(const std::string& name, const char* type, const std::string& help);
    void sample(const std::string& name, const Labels& labels, double value);
    void sample(const std::string& name, double value) { sample(name, {}, value); }
    const std::string& text() const { return out_; }

private:
    std::string out_;
};

class Metrics {
public:
    using Collector = std::function<void(MetricsWriter&)>;
    void add(Collector c) { collectors_.push_back(std::move(c)); }
    std::string scrape() const;

private:
    std::vector<Collector> collectors_;
};

std::string escape_label(const std::string& v);

}  // namespace nimbus::mgmt
