// Per-inbound-SA anti-replay window (RFC 4303 §3.4.3 and Appendix A), with
// Extended Sequence Numbers (RFC 4303 §2.2.1, Appendix A2).
//
// Design: RFC 6479's ring of 64-bit blocks. The window of W bits (W a
// multiple of 64, 64..4096) is kept in W/64 + 1 blocks so that the block
// holding the newest number can be partly filled while the oldest W numbers
// are all still tracked; sliding right clears whole blocks, O(1) amortised,
// and never shifts bits. Block positions are relative to the block holding
// `top`, so no division or modulo is needed on the per-packet path.
//
// Usage on the ESP inbound path, per packet (the SA is pinned to one worker,
// so no locks):
//   1. c = w.check(seq_lo)      before decryption (const, changes nothing)
//      - Ok: go on, and authenticate with c.seq (with ESN the high 32 bits
//        are inferred here and go into the AAD, RFC 4303 §2.2.1 / RFC 4106 §5)
//      - Duplicate: a number already accepted inside the window. For a
//        multi-path "critical" tunnel this is the expected fate of the second
//        copy; count it apart from TooOld.
//      - TooOld: left of the window.   - Invalid: sequence number 0.
//   2. ICV check (decrypt).
//   3. w.update(c.seq) only if the ICV verified (RFC 4303 §3.4.3). update
//      re-checks: two copies of one number in the same burst both pass
//      check(), and only the first update() returns Ok.
//
// Memory: a fixed 16-byte header + 65 blocks (520 bytes) = 536 bytes whatever
// the configured size, so windows sit in a flat SA array; check() touches the
// header and one block.
#pragma once

#include <cstdint>
#include <cstring>

namespace nimbus::replay {

enum class Verdict : uint8_t {
    Ok,         // new: accept (after authentication)
    Duplicate,  // already seen, inside the window
    TooOld,     // left of the window (or, with ESN, before the SA started)
    Invalid,    // sequence number 0: never sent (RFC 4303 §3.3.3)
};

inline const char* name(Verdict v) {
    switch (v) {
        case Verdict::Ok: return "ok";
        case Verdict::Duplicate: return "duplicate";
        case Verdict::TooOld: return "too-old";
        case Verdict::Invalid: return "invalid";
    }
    return "?";
}

struct Check {
    Verdict verdict;
    uint64_t seq;  // full sequence number (ESN: inferred high half); 0 when unknown
};

class Window {
public:
    static constexpr uint32_t kMinSize = 64;
    static constexpr uint32_t kMaxSize = 4096;
    static constexpr uint32_t kMaxBlocks = kMaxSize / 64 + 1;

    // Sizes are clamped to 64..4096 and rounded up to a multiple of 64.
    static constexpr uint32_t round_size(uint32_t requested) {
        if (requested < kMinSize) return kMinSize;
        if (requested > kMaxSize) return kMaxSize;
        return (requested + 63) / 64 * 64;
    }

    explicit Window(uint32_t size = kMinSize, bool esn = false) noexcept { reset(size, esn); }

    void reset(uint32_t size, bool esn) noexcept {
        top_ = 0;
        size_ = uint16_t(round_size(size));
        nblocks_ = uint8_t(size_ / 64 + 1);
        top_idx_ = 0;
        esn_ = esn;
        std::memset(blocks_, 0, sizeof(blocks_));
    }

    uint32_t size() const { return size_; }
    bool esn() const { return esn_; }
    // Highest authenticated sequence number; 0 before the first packet.
    uint64_t top() const { return top_; }

    // Before decryption. With ESN, seq_lo is the 32-bit field from the ESP
    // header and the result carries the inferred 64-bit number.
    Check check(uint32_t seq_lo) const noexcept {
        uint64_t s = seq_lo;
        if (esn_) {
            if (!infer_esn(seq_lo, &s)) return {Verdict::TooOld, 0};
        }
        return {classify(s), s};
    }

    // After the ICV verified. Records seq and slides the window; returns Ok
    // if seq was new, otherwise what check() would say now.
    Verdict update(uint64_t seq) noexcept {
        if (seq == 0) return Verdict::Invalid;
        if (seq > top_) {
            uint64_t d = (seq >> 6) - (top_ >> 6);  // whole blocks to slide
            if (d >= nblocks_) {
                std::memset(blocks_, 0, sizeof(uint64_t) * nblocks_);
            } else {
                for (uint64_t i = 0; i < d; i++) {
                    top_idx_ = uint8_t(top_idx_ + 1 == nblocks_ ? 0 : top_idx_ + 1);
                    blocks_[top_idx_] = 0;
                }
            }
            top_ = seq;
            blocks_[top_idx_] |= bit(seq);
            return Verdict::Ok;
        }
        if (top_ - seq >= size_) return Verdict::TooOld;
        uint64_t& b = blocks_[index(seq)];
        if (b & bit(seq)) return Verdict::Duplicate;
        b |= bit(seq);
        return Verdict::Ok;
    }

private:
    static uint64_t bit(uint64_t seq) { return uint64_t(1) << (seq & 63); }

    // Ring index of the block holding seq; requires top_ - seq < size_, which
    // bounds the block distance by nblocks_ - 1.
    uint32_t index(uint64_t seq) const {
        uint32_t back = uint32_t((top_ >> 6) - (seq >> 6));
        return top_idx_ >= back ? top_idx_ - back : top_idx_ + nblocks_ - back;
    }

    Verdict classify(uint64_t s) const {
        if (s == 0) return Verdict::Invalid;
        if (s > top_) return Verdict::Ok;
        if (top_ - s >= size_) return Verdict::TooOld;
        return (blocks_[index(s)] & bit(s)) ? Verdict::Duplicate : Verdict::Ok;
    }

    // RFC 4303 Appendix A2.2: place seq_lo in the 2^32-wide span that starts
    // at the window's bottom, T - W + 1. False when that lands before 1's
    // subspace begins (the SA is younger than that number).
    bool infer_esn(uint32_t lo, uint64_t* out) const {
        const uint32_t tl = uint32_t(top_);
        const uint32_t th = uint32_t(top_ >> 32);
        const uint32_t w = size_;
        const uint32_t bottom_lo = tl - w + 1;  // mod 2^32
        uint32_t hi;
        if (tl >= w - 1) {
            // Case A: the window lies within one subspace.
            if (lo >= bottom_lo) {
                hi = th;
            } else {
                if (th == UINT32_MAX) return false;  // beyond 2^64: cannot be
                hi = th + 1;
            }
        } else {
            // Case B: the window spans two subspaces.
            if (lo >= bottom_lo) {
                if (th == 0) return false;  // before the first subspace
                hi = th - 1;
            } else {
                hi = th;
            }
        }
        *out = uint64_t(hi) << 32 | lo;
        return true;
    }

    uint64_t top_;
    uint16_t size_;
    uint8_t nblocks_;
    uint8_t top_idx_;
    bool esn_;
    uint64_t blocks_[kMaxBlocks];
};

static_assert(sizeof(Window) == 16 + 8 * Window::kMaxBlocks);

}  // namespace nimbus::replay
