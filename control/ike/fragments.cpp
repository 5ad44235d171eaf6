#include "control/ike/fragments.h"

namespace nimbus::ike {

void FragmentReassembly::reset() {
    total_ = 0;
    have_ = 0;
    bytes_ = 0;
    first_inner_ = PT_NONE;
    parts_.clear();
}

FragmentReassembly::Result FragmentReassembly::add(const SkfPayload& f, std::vector<uint8_t> chunk) {
    if (f.total > max_fragments_ || f.number == 0 || f.number > f.total) {
        reset();
        return Result::Refused;
    }
    if (total_ != 0 && f.total < total_) return Result::Stale;
    if (f.total > total_) {
        // §2.6.2: a larger Total means the sender re-fragmented (e.g. after
        // PMTU discovery); what we had is obsolete.
        reset();
        total_ = f.total;
        parts_.resize(total_);
    }
    auto& slot = parts_[f.number - 1];
    if (slot) return Result::Duplicate;
    if (bytes_ + chunk.size() > max_bytes_) {
        reset();
        return Result::Refused;
    }
    bytes_ += chunk.size();
    if (f.number == 1) first_inner_ = f.first_inner;
    slot = std::move(chunk);
    return ++have_ == total_ ? Result::Complete : Result::Incomplete;
}

std::vector<uint8_t> FragmentReassembly::take(uint8_t* first_inner) {
    std::vector<uint8_t> out;
    if (total_ == 0 || have_ != total_) return out;
    out.reserve(bytes_);
    for (auto& p : parts_) out.insert(out.end(), p->begin(), p->end());
    if (first_inner) *first_inner = first_inner_;
    reset();
    return out;
}

}  // namespace nimbus::ike
