#include "control/mgmt/metrics.h"

#include <cmath>

#include <fmt/format.h>

namespace nimbus::mgmt {

std::string escape_label(const std::string& v) {
    std::string s;
    for (char c : v) {
        if (c == '\\') s += "\\\\";
        else if (c == '"') s += "\\\"";
        else if (c == '\n') s += "\\n";
        else s += c;
    }
    return s;
}

void MetricsWriter::family(const std::string& name, const char* type, const std::string& help) {
    std::string h;
    for (char c : help) h += c == '\n' ? ' ' : c;
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, h, name, type);
}

void MetricsWriter::sample(const std::string& name, const Labels& labels, double value) {
    out_ += name;
    if (!labels.empty()) {
        out_ += '{';
        for (size_t i = 0; i < labels.size(); i++) {
            if (i) out_ += ',';
            out_ += fmt::format("{}=\"{}\"", labels[i].first, escape_label(labels[i].second));
        }
        out_ += '}';
    }
    if (std::isnan(value)) out_ += " NaN\n";
    else if (value == std::floor(value) && std::fabs(value) < 1e15) out_ += fmt::format(" {}\n", int64_t(value));
    else out_ += fmt::format(" {}\n", value);
}

std::string Metrics::scrape() const {
    MetricsWriter w;
    for (auto& c : collectors_) c(w);
    return w.text();
}

}  // namespace nimbus::mgmt
