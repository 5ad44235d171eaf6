// DoS resistance for the responder (RFC 7296 §2.6, RFC 8019 ideas):
// stateless COOKIE challenges once the number of half-open IKE SAs passes a
// threshold, and a per-source cap on half-open SAs. Nothing here touches
// the network; the engine asks and counts.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "control/ike/secret.h"
#include "src/common/addr.h"

namespace nimbus::ike {

// §2.6: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>).
// Hash is HMAC-SHA-256 keyed with the secret. The secret is replaced every
// `rotate_ns`; cookies made with the previous secret stay valid for one
// more period, so a client that got a cookie just before a rotation is not
// sent round again.
class CookieJar {
public:
    static constexpr size_t kLen = 1 + 32;   // version octet + HMAC-SHA-256
    explicit CookieJar(uint64_t rotate_ns = 120'000'000'000ull);

    std::vector<uint8_t> make(std::span<const uint8_t> ni, const IpAddr& ip, uint64_t spi_i, uint64_t now);
    bool check(std::span<const uint8_t> cookie, std::span<const uint8_t> ni, const IpAddr& ip, uint64_t spi_i,
               uint64_t now);

    // Test hook: force the next rotation.
    void rotate_for_test(uint64_t now) { rotate(now); }

private:
    void maybe_rotate(uint64_t now);
    void rotate(uint64_t now);
    std::array<uint8_t, 32> mac(const Secret& key, std::span<const uint8_t> ni, const IpAddr& ip,
                                uint64_t spi_i) const;

    uint64_t rotate_ns_;
    uint64_t rotated_at_ = 0;
    bool started_ = false;
    uint8_t version_ = 0;
    Secret cur_, prev_;
};

// Half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not yet done), in total
// and per source address.
class HalfOpen {
public:
    void add(const IpAddr& src) {
        total_++;
        per_src_[src]++;
    }
    void remove(const IpAddr& src);
    size_t total() const { return total_; }
    size_t from(const IpAddr& src) const {
        auto it = per_src_.find(src);
        return it == per_src_.end() ? 0 : it->second;
    }

private:
    struct Hash {
        size_t operator()(const IpAddr& a) const;
    };
    size_t total_ = 0;
    std::unordered_map<IpAddr, size_t, Hash> per_src_;
};

}  // namespace nimbus::ike
