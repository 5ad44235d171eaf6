// Known-answer tests: ESP vectors (draft-mcgrew-gcm-test-01, RFC 7634
// Appendix A) and NIST CAVP GCM vectors, on every arch path and GCM driver.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "dataplane/crypto/aead.h"
#include "src/common/bytes.h"
#include "test/unit/crypto/engines.h"
#include "test/unit/crypto/vectors.h"

using namespace nimbus;
using namespace nimbus::crypto;
using namespace nimbus::crypto::test;

namespace {

// ESP AAD from the header fields: SPI || seq (8 bytes), or with ESN
// SPI || seq-hi || seq-lo (12 bytes). RFC 4106 §5, RFC 7634 §2.1.
std::vector<uint8_t> esp_aad(uint32_t spi, uint64_t seq, bool esn) {
    ByteWriter w;
    w.u32(spi);
    if (esn) w.u32(uint32_t(seq >> 32));
    w.u32(uint32_t(seq));
    return w.take();
}

struct Buf {
    std::vector<uint8_t> data, tag, aad, iv;
    Op op(const SaKey& k) {
        Op o;
        o.key = &k;
        o.iv = iv.data();
        o.aad = aad.data();
        o.aad_len = uint8_t(aad.size());
        o.data = data.data();
        o.len = uint32_t(data.size());
        o.tag = tag.data();
        return o;
    }
};

// Encrypt pt and compare with ct||tag; decrypt back; then flip one bit of the
// ciphertext, of the tag and of the AAD in turn: each must be rejected.
void check_vector(Engine& e, const SaKey& key, std::vector<uint8_t> iv, std::vector<uint8_t> aad,
                  const std::vector<uint8_t>& pt, const std::vector<uint8_t>& ct_tag) {
    REQUIRE(ct_tag.size() == pt.size() + kTagLen);
    const std::vector<uint8_t> ct(ct_tag.begin(), ct_tag.end() - kTagLen);
    const std::vector<uint8_t> tag(ct_tag.end() - kTagLen, ct_tag.end());

    Buf b{pt, std::vector<uint8_t>(kTagLen, 0), aad, iv};
    Op op = b.op(key);
    CHECK(e.encrypt({&op, 1}) == 1);
    CHECK(op.ok);
    CHECK(to_hex(b.data) == to_hex(ct));
    CHECK(to_hex(b.tag) == to_hex(tag));

    Buf d{ct, tag, aad, iv};
    op = d.op(key);
    CHECK(e.decrypt({&op, 1}) == 1);
    CHECK(op.ok);
    CHECK(to_hex(d.data) == to_hex(pt));

    for (int what = 0; what < 3; what++) {
        Buf t{ct, tag, aad, iv};
        if (what == 0 && t.data.empty()) continue;
        auto& v = what == 0 ? t.data : what == 1 ? t.tag : t.aad;
        if (v.empty()) continue;
        v[v.size() / 2] ^= 0x10;
        op = t.op(key);
        INFO("tamper " << (what == 0 ? "ciphertext" : what == 1 ? "tag" : "aad"));
        CHECK(e.decrypt({&op, 1}) == 0);
        CHECK_FALSE(op.ok);
    }
}

}  // namespace

TEST_CASE("ESP AEAD known answers: draft-mcgrew-gcm-test-01 and RFC 7634 Appendix A") {
    for (const auto& cfg : engine_configs()) {
        auto e = make_engine(cfg);
        for (const auto& v : kEspVectors) {
            INFO(cfg.label() << " " << v.label);
            std::vector<uint8_t> km = from_hex(v.key), salt = from_hex(v.salt);
            REQUIRE(km.size() == key_len(v.aead));
            REQUIRE(salt.size() == kSaltLen);
            km.insert(km.end(), salt.begin(), salt.end());  // KEYMAT = key || salt
            SaKey key;
            std::string err;
            REQUIRE(e->expand_key(key, v.aead, km, &err));
            CHECK(key.aead() == v.aead);
            CHECK(std::memcmp(key.salt().data(), salt.data(), kSaltLen) == 0);

            std::vector<uint8_t> aad = esp_aad(v.spi, v.seq, v.esn);
            CHECK(aad.size() == (v.esn ? kAadLenEsn : kAadLen));
            CHECK(to_hex(aad) == to_hex(from_hex(v.aad)));  // our AAD = the published one
            check_vector(*e, key, from_hex(v.iv), aad, from_hex(v.pt), from_hex(v.ct_tag));
        }
    }
}

TEST_CASE("AES-GCM primitive known answers: NIST CAVP gcmEncryptExtIV128/256, 96-bit IV") {
    for (const auto& cfg : engine_configs()) {
        auto e = make_engine(cfg);
        for (const auto& v : kNistVectors) {
            INFO(cfg.label() << " NIST " << v.label);
            std::vector<uint8_t> km = from_hex(v.key), iv12 = from_hex(v.iv);
            REQUIRE(iv12.size() == kNonceLen);
            // nonce = salt || explicit IV: the first 4 IV bytes play the salt.
            km.insert(km.end(), iv12.begin(), iv12.begin() + kSaltLen);
            SaKey key;
            REQUIRE(e->expand_key(key, v.aead, km));
            std::vector<uint8_t> ct_tag = from_hex(v.ct), tag = from_hex(v.tag);
            ct_tag.insert(ct_tag.end(), tag.begin(), tag.end());
            check_vector(*e, key, std::vector<uint8_t>(iv12.begin() + kSaltLen, iv12.end()),
                         from_hex(v.aad), from_hex(v.pt), ct_tag);
        }
    }
}

TEST_CASE("ESP vectors as one mixed burst give the same answers") {
    // All ciphers interleaved in one call: GCM ops on the direct path between
    // ChaCha20 jobs in the IPsec-MB queue.
    for (const auto& cfg : engine_configs()) {
        auto e = make_engine(cfg);
        INFO(cfg.label());
        constexpr size_t n = std::size(kEspVectors);
        std::vector<SaKey> keys(n);
        std::vector<Buf> bufs(n);
        std::vector<Op> ops(n);
        for (size_t i = 0; i < n; i++) {
            const auto& v = kEspVectors[i];
            std::vector<uint8_t> km = from_hex(v.key), salt = from_hex(v.salt);
            km.insert(km.end(), salt.begin(), salt.end());
            REQUIRE(e->expand_key(keys[i], v.aead, km));
            bufs[i] = Buf{from_hex(v.pt), std::vector<uint8_t>(kTagLen, 0),
                          esp_aad(v.spi, v.seq, v.esn), from_hex(v.iv)};
            ops[i] = bufs[i].op(keys[i]);
        }
        CHECK(e->encrypt(ops) == n);
        for (size_t i = 0; i < n; i++) {
            INFO(kEspVectors[i].label);
            std::vector<uint8_t> got = bufs[i].data;
            got.insert(got.end(), bufs[i].tag.begin(), bufs[i].tag.end());
            CHECK(to_hex(got) == to_hex(from_hex(kEspVectors[i].ct_tag)));
        }
        // Decrypt, with every third tag broken.
        for (size_t i = 0; i < n; i++) {
            if (i % 3 == 0) bufs[i].tag[0] ^= 1;
            ops[i] = bufs[i].op(keys[i]);
        }
        uint32_t good = e->decrypt(ops);
        uint32_t expect = 0;
        for (size_t i = 0; i < n; i++) {
            INFO(kEspVectors[i].label);
            CHECK(ops[i].ok == (i % 3 != 0));
            if (i % 3 != 0) {
                expect++;
                CHECK(to_hex(bufs[i].data) == to_hex(from_hex(kEspVectors[i].pt)));
            }
        }
        CHECK(good == expect);
    }
}
