// Reassembly of IKE message fragments (RFC 7383 §2.6). Feed it the opened
// chunks of one message (same Message ID); it hands back the joined SK
// contents once every fragment 1..Total has arrived. Bounded: at most
// `max_fragments` fragments and `max_bytes` octets per message.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "control/ike/payloads.h"

namespace nimbus::ike {

class FragmentReassembly {
public:
    explicit FragmentReassembly(uint16_t max_fragments = 32, size_t max_bytes = 64 * 1024)
        : max_fragments_(max_fragments), max_bytes_(max_bytes) {}

    enum class Result : uint8_t {
        Incomplete,   // stored, more to come
        Complete,     // take() now returns the whole message
        Duplicate,    // already have this fragment: ignored
        Stale,        // smaller Total than the set in progress (§2.6.2): ignored
        Refused,      // over the bounds: the set is dropped
    };

    // `first_inner` is the SKF Next Payload field (meaningful in fragment 1).
    Result add(const SkfPayload& f, std::vector<uint8_t> chunk);
    // The joined plaintext and the first inner payload type.
    std::vector<uint8_t> take(uint8_t* first_inner);
    void reset();
    uint16_t total() const { return total_; }

private:
    uint16_t max_fragments_;
    size_t max_bytes_;
    uint16_t total_ = 0;
    uint16_t have_ = 0;
    size_t bytes_ = 0;
    uint8_t first_inner_ = PT_NONE;
    std::vector<std::optional<std::vector<uint8_t>>> parts_;
};

}  // namespace nimbus::ike
