// How `show tunnels` looks: one row per tunnel (static or IKE), filters by
// cloud, state and site-name prefix, and the summary (tunnels per cloud and
// state). Pure: the rows are gathered by control/esp/tunnels.cpp from the
// dataplane and the IKE engine, so this part is unit-tested on its own and
// stays readable at thousands of tunnels (one line each; details only for
// `show tunnels NAME`).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/common/table.h"

namespace nimbus::esp {

struct TunnelRow {
    std::string kind;   // "static" | "ike"
    uint64_t id = 0;    // IKE tunnel id, or the dataplane id of a static tunnel
    std::string cloud, site, state, peer;
    uint64_t uptime_s = 0;
    double rtt_last_ms = -1, rtt_min_ms = -1, rtt_avg_ms = -1, rtt_max_ms = -1;
    uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
    uint64_t drops = 0;  // sum of the tunnel's SA drop counters
    uint32_t child_rekeys = 0, ike_rekeys = 0, flaps = 0;
    std::string last_down;  // reason name, "" if never down
    nlohmann::json data;    // its full JSON object where a caller built it (esp::row_json)
};

// Where a listing stands: at the static tunnel in position `pos`, or (`ike`)
// at the IKE tunnels with ids above `after` (keyset: IKE tunnels that come
// and go between two slices shift nothing; their ids start at 1).
struct SliceCursor {
    size_t pos = 0;
    bool ike = false;
    uint64_t after = 0;
    // Listings only move forward: static positions, then IKE ids.
    bool before(const SliceCursor& o) const {
        if (ike != o.ike) return !ike;
        return ike ? after < o.after : pos < o.pos;
    }
};

// Where a slice of a listing stands (RowSlice below, esp::SaSlice).
struct SliceHead {
    bool ran = false;   // false: the control thread did not run it (stopping, timed out)
    uint64_t gen = 0;   // generation of the static tunnel set the slice saw
    bool last = false;  // nothing after it
    SliceCursor next;   // where the next slice starts
};

// One slice of a listing, gathered on the control thread (Tunnels::slice):
// the rows of a run of static tunnels, or of IKE tunnels after them. `src[i]`, when asked for, is what rows[i]'s JSON is built
// from (esp::row_json, control/esp/tunnels.h).
struct RowSource;
struct RowSlice : SliceHead {
    std::vector<TunnelRow> rows;
    std::vector<std::shared_ptr<RowSource>> src;
};

// Drives a listing slice by slice, so that no single step holds the control
// thread for long (at 100,000 tunnels the whole listing in one callback held
// it 0.6-0.9 s, past an HA partner's patience). `slice(from)` returns the
// slice (a SliceHead) that starts at cursor `from`; `sink` takes each slice
// as it comes. When the static tunnel set changes between slices (a config
// apply: positions shift), `reset()` is called and the listing starts over,
// at most `attempts` times. Returns "" or an error message for the operator.
template <class SliceFn, class Sink, class Reset>
std::string collect_slices(SliceFn&& slice, Sink&& sink, Reset&& reset, int attempts = 5) {
    for (int a = 0; a < attempts; a++) {
        if (a) reset();
        SliceCursor from;
        uint64_t gen = 0;
        bool changed = false;
        for (bool first = true;; first = false) {
            auto s = slice(from);
            const SliceHead& h = s;
            if (!h.ran) return "% nimbusd did not answer (stopping?)";
            if (!first && h.gen != gen) {
                changed = true;
                break;
            }
            gen = h.gen;
            bool last = h.last;
            SliceCursor next = h.next;
            sink(s);
            if (last) break;
            if (!from.before(next)) return "% listing made no progress";  // a slice must move on
            from = next;
        }
        if (!changed) return "";
    }
    return "% the tunnels kept changing during the listing; try again";
}

struct TunnelFilter {
    std::string cloud, state, site_prefix;  // empty: any
    bool match(const TunnelRow& r) const;
};

// "up", "down", "connecting" (static tunnels are always "up").
bool valid_state(const std::string& s);
// Site-name prefix match: against the name as configured and, for a DN,
// against its CN ("store-00" matches "CN=store-0001").
bool site_has_prefix(const std::string& site, const std::string& prefix);

// The ID column: the IKE tunnel id, or "s" and the dataplane id of a
// static tunnel (their numbers overlap).
nlohmann::json static_id(const TunnelRow& r);

// The one-line-per-tunnel table (text) for `show tunnels`.
std::string render_list(const std::vector<const TunnelRow*>& rows);

struct SummaryExtra {
    double handshakes_per_s_10s = 0, handshakes_per_s_60s = 0;
    uint64_t handshakes_total = 0, auth_failures_total = 0;
    std::map<std::string, uint64_t> downs;     // tunnel downs by reason since start
    std::map<std::string, uint64_t> dp_drops;  // dataplane drops by reason (non-zero)
};

// Counts per cloud and state (all clouds, and a total line), then the
// handshake rate, downs by reason and dataplane drops by reason.
struct Summary {
    std::map<std::string, std::map<std::string, uint64_t>> per_cloud;  // cloud -> state -> n
    std::map<std::string, uint64_t> total;                             // state -> n
    uint64_t tunnels = 0;
    // n tunnels of a cloud ("" shows as "-") in a state.
    void add(const std::string& cloud, const std::string& state, uint64_t n = 1) {
        if (n == 0) return;
        per_cloud[cloud.empty() ? "-" : cloud][state] += n;
        total[state] += n;
        tunnels += n;
    }
};
Summary summarize(const std::vector<const TunnelRow*>& rows);
std::string render_summary(const Summary& s, const SummaryExtra& x, nlohmann::json* out);

using nimbus::duration;  // src/common/table.h

}  // namespace nimbus::esp
