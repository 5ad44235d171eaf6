// Key material that wipes itself (WireGuard's memzero_explicit on every exit
// path): a fixed-size byte buffer, never grown in place (growing a vector
// would leave a stale copy in freed memory), wiped on destruction and on
// move-assignment. Keys never print; there is no formatter for this type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "src/common/bytes.h"

namespace nimbus::ike {

class Secret {
public:
    Secret() = default;
    explicit Secret(size_t n) : v_(n) {}
    explicit Secret(std::span<const uint8_t> s) : v_(s.begin(), s.end()) {}
    Secret(const Secret&) = default;
    Secret(Secret&& o) noexcept : v_(std::move(o.v_)) { o.v_.clear(); }
    Secret& operator=(const Secret& o) {
        if (this != &o) {
            clear();
            v_ = o.v_;
        }
        return *this;
    }
    Secret& operator=(Secret&& o) noexcept {
        if (this != &o) {
            clear();
            v_ = std::move(o.v_);
            o.v_.clear();
        }
        return *this;
    }
    ~Secret() { clear(); }

    uint8_t* data() { return v_.data(); }
    const uint8_t* data() const { return v_.data(); }
    size_t size() const { return v_.size(); }
    bool empty() const { return v_.empty(); }
    std::span<const uint8_t> span() const { return {v_.data(), v_.size()}; }
    operator std::span<const uint8_t>() const { return span(); }
    // A copy of [off, off + n); n must fit.
    Secret sub(size_t off, size_t n) const { return Secret(span().subspan(off, n)); }
    void clear() {
        if (!v_.empty()) wipe(v_.data(), v_.size());
        v_.clear();
        v_.shrink_to_fit();
    }
    // Constant-time comparison (for test assertions and MAC checks).
    bool operator==(const Secret& o) const;

private:
    std::vector<uint8_t> v_;
};

// Constant-time equality of two spans (false on length mismatch).
bool ct_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

// A broken crypto invariant (OpenSSL failing on an algorithm we selected and
// self-tested): log and abort, per the error policy for the control plane.
[[noreturn]] void crypto_fatal(const char* what);

}  // namespace nimbus::ike
