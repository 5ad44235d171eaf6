#include "control/ike/natt.h"

#include <openssl/evp.h>

#include <fmt/format.h>

#include "control/ike/secret.h"

namespace nimbus::ike {

std::string Endpoint::str() const { return fmt::format("{}[{}]", addr.str(), port); }

std::array<uint8_t, 20> natd_hash(uint64_t spi_i, uint64_t spi_r, const Endpoint& e) {
    uint8_t buf[8 + 8 + 16 + 2];
    size_t n = 0;
    for (int s = 56; s >= 0; s -= 8) buf[n++] = uint8_t(spi_i >> s);
    for (int s = 56; s >= 0; s -= 8) buf[n++] = uint8_t(spi_r >> s);
    size_t alen = e.addr.is_v4() ? 4 : 16;
    for (size_t i = 0; i < alen; i++) buf[n++] = e.addr.b[i];
    buf[n++] = uint8_t(e.port >> 8);
    buf[n++] = uint8_t(e.port);
    std::array<uint8_t, 20> out{};
    unsigned int len = 0;
    // SHA-1 is what §2.23 prescribes; it is used as a checksum here, not
    // for security.
    if (EVP_Digest(buf, n, out.data(), &len, EVP_sha1(), nullptr) != 1 || len != out.size())
        crypto_fatal("EVP_Digest(SHA1) for NAT-D");
    return out;
}

NatState nat_detect(uint64_t spi_i, uint64_t spi_r, std::span<const std::vector<uint8_t>> source_hashes,
                    std::span<const uint8_t> dest_hash, const Endpoint& remote, const Endpoint& local) {
    NatState st;
    auto src = natd_hash(spi_i, spi_r, remote);
    bool src_match = false;
    for (const auto& h : source_hashes)
        if (ct_equal(h, src)) src_match = true;
    st.peer_behind_nat = !src_match;
    auto dst = natd_hash(spi_i, spi_r, local);
    st.local_behind_nat = !ct_equal(dest_hash, dst);
    return st;
}

NattKind classify_natt(std::span<const uint8_t> d) {
    if (d.size() == 1 && d[0] == kNattKeepalive) return NattKind::Keepalive;
    if (d.size() < kNonEspMarkerLen) return NattKind::Runt;
    if (d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0) return NattKind::Ike;
    return NattKind::Esp;
}

}  // namespace nimbus::ike
