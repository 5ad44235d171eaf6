#include "control/ike/cookie.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace nimbus::ike {

CookieJar::CookieJar(uint64_t rotate_ns) : rotate_ns_(rotate_ns) {}

void CookieJar::rotate(uint64_t now) {
    prev_ = std::move(cur_);
    cur_ = Secret(32);
    if (RAND_bytes(cur_.data(), int(cur_.size())) != 1) crypto_fatal("RAND_bytes for the cookie secret");
    version_++;
    rotated_at_ = now;
    started_ = true;
}

void CookieJar::maybe_rotate(uint64_t now) {
    if (!started_ || now - rotated_at_ >= rotate_ns_) rotate(now);
}

std::array<uint8_t, 32> CookieJar::mac(const Secret& key, std::span<const uint8_t> ni, const IpAddr& ip,
                                       uint64_t spi_i) const {
    uint8_t tail[16 + 8];
    size_t alen = ip.is_v4() ? 4 : 16;
    std::copy(ip.b.begin(), ip.b.begin() + long(alen), tail);
    for (int i = 0; i < 8; i++) tail[alen + size_t(i)] = uint8_t(spi_i >> (56 - 8 * i));
    std::array<uint8_t, 32> out{};
    // One-shot HMAC over Ni | IPi | SPIi.
    std::vector<uint8_t> msg(ni.begin(), ni.end());
    msg.insert(msg.end(), tail, tail + alen + 8);
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), int(key.size()), msg.data(), msg.size(), out.data(), &len) || len != 32)
        crypto_fatal("HMAC-SHA256 for a cookie");
    return out;
}

std::vector<uint8_t> CookieJar::make(std::span<const uint8_t> ni, const IpAddr& ip, uint64_t spi_i,
                                     uint64_t now) {
    maybe_rotate(now);
    auto m = mac(cur_, ni, ip, spi_i);
    std::vector<uint8_t> c;
    c.reserve(kLen);
    c.push_back(version_);
    c.insert(c.end(), m.begin(), m.end());
    return c;
}

bool CookieJar::check(std::span<const uint8_t> cookie, std::span<const uint8_t> ni, const IpAddr& ip,
                      uint64_t spi_i, uint64_t now) {
    maybe_rotate(now);
    if (cookie.size() != kLen) return false;
    const Secret* key = nullptr;
    if (cookie[0] == version_) key = &cur_;
    else if (cookie[0] == uint8_t(version_ - 1) && !prev_.empty()) key = &prev_;
    if (!key) return false;
    auto m = mac(*key, ni, ip, spi_i);
    return ct_equal(cookie.subspan(1), m);
}

size_t HalfOpen::Hash::operator()(const IpAddr& a) const {
    uint64_t h = 1469598103934665603ull;
    for (auto b : a.b) h = (h ^ b) * 1099511628211ull;
    return size_t(h);
}

void HalfOpen::remove(const IpAddr& src) {
    auto it = per_src_.find(src);
    if (it == per_src_.end()) return;
    if (total_) total_--;
    if (--it->second == 0) per_src_.erase(it);
}

}  // namespace nimbus::ike
