// Engine behaviour: arch selection, self-test, key object, malformed ops,
// bursts larger than the IPsec-MB queue, and differential tests against
// OpenSSL EVP in both directions.
#include <catch2/catch.hpp>

#include <intel-ipsec-mb.h>
#include <openssl/evp.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dataplane/crypto/aead.h"
#include "src/common/bytes.h"
#include "test/unit/crypto/engines.h"

using namespace nimbus;
using namespace nimbus::crypto;
using namespace nimbus::crypto::test;

namespace {

constexpr Aead kAll[] = {Aead::AesGcm128, Aead::AesGcm256, Aead::Chacha20Poly1305};

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = uint8_t(rng());
    return v;
}

// ---- OpenSSL reference (one-shot AEAD, 12-byte nonce, 16-byte tag) ----

const EVP_CIPHER* evp(Aead a) {
    switch (a) {
        case Aead::AesGcm128: return EVP_aes_128_gcm();
        case Aead::AesGcm256: return EVP_aes_256_gcm();
        case Aead::Chacha20Poly1305: return EVP_chacha20_poly1305();
    }
    return nullptr;
}

// Returns false on any OpenSSL error or, when decrypting, a bad tag.
bool ossl(bool enc, Aead a, const uint8_t* key, const uint8_t* nonce, const std::vector<uint8_t>& aad,
          std::vector<uint8_t>& data, uint8_t* tag) {
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    bool ok = c && EVP_CipherInit_ex(c, evp(a), nullptr, nullptr, nullptr, enc ? 1 : 0) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, int(kNonceLen), nullptr) == 1 &&
              EVP_CipherInit_ex(c, nullptr, nullptr, key, nonce, enc ? 1 : 0) == 1;
    int outl = 0;
    if (ok && !aad.empty()) ok = EVP_CipherUpdate(c, nullptr, &outl, aad.data(), int(aad.size())) == 1;
    std::vector<uint8_t> out(data.size() + 16);
    int total = 0;
    if (ok && !data.empty()) {
        ok = EVP_CipherUpdate(c, out.data(), &outl, data.data(), int(data.size())) == 1;
        total = outl;
    }
    if (ok && !enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, int(kTagLen), tag) == 1;
    if (ok) {
        ok = EVP_CipherFinal_ex(c, out.data() + total, &outl) == 1;
        total += outl;
    }
    if (ok && enc) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, int(kTagLen), tag) == 1;
    EVP_CIPHER_CTX_free(c);
    if (ok) data.assign(out.begin(), out.begin() + total);
    return ok;
}

struct Packet {
    std::vector<uint8_t> iv, aad, data, tag;
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

std::vector<uint8_t> nonce_of(const std::vector<uint8_t>& keymat, Aead a, const std::vector<uint8_t>& iv) {
    std::vector<uint8_t> n(keymat.begin() + long(key_len(a)), keymat.end());
    n.insert(n.end(), iv.begin(), iv.end());
    return n;
}

}  // namespace

TEST_CASE("Engine initialises every supported arch path and reports it") {
    Engine autoe;
    std::string err;
    REQUIRE(autoe.init(Arch::Auto, &err));
    CHECK(autoe.arch() != Arch::Auto);
    CHECK(Engine::arch_supported(autoe.arch()));
    CHECK(autoe.describe().rfind(std::string(name(autoe.arch())), 0) == 0);
    CHECK(autoe.describe().find("IPsec-MB 1.3") != std::string::npos);
    INFO("auto-selected: " << autoe.describe());
    CHECK(Engine::arch_supported(Arch::Sse));  // the floor nimbus needs: AES-NI + PCLMULQDQ
    for (Arch a : {Arch::Sse, Arch::Avx, Arch::Avx2, Arch::Avx512}) {
        if (!Engine::arch_supported(a)) continue;
        Engine e;
        CHECK(e.init(a, &err));
        CHECK(e.arch() == a);
        CHECK(e.ready());
    }
    Engine none;
    CHECK_FALSE(none.ready());
    SaKey k;
    std::vector<uint8_t> km(20, 1);
    CHECK_FALSE(none.expand_key(k, Aead::AesGcm128, km, &err));
    CHECK_FALSE(k.valid());
}

TEST_CASE("self-test passes on every path and fails on a corrupted vector") {
    REQUIRE(self_test_vector_count() >= 5);
    for (const auto& cfg : engine_configs()) {
        auto e = make_engine(cfg);
        INFO(cfg.label());
        std::string err;
        CHECK(self_test(*e, &err));
        CHECK(err.empty());
        for (int i = 0; i < int(self_test_vector_count()); i++) {
            corrupt_self_test_vector_for_test(i);
            err.clear();
            CHECK_FALSE(self_test(*e, &err));
            CHECK(err.find("ciphertext mismatch") != std::string::npos);
            CHECK(err.find(std::string(name(cfg.arch))) != std::string::npos);
        }
        corrupt_self_test_vector_for_test(-1);
        CHECK(self_test(*e, &err));
    }
    Engine none;
    std::string err;
    CHECK_FALSE(self_test(none, &err));
    CHECK_FALSE(err.empty());
}

TEST_CASE("IPsec-MB never touches the tail of gcm_key_data that SaKey uses") {
    // SaKey keeps its salt and parameters in bytes 1008..1023 of the 1024-byte
    // gcm_key_data footprint; prove key expansion and use leave them alone.
    for (Arch a : {Arch::Sse, Arch::Avx, Arch::Avx2, Arch::Avx512}) {
        if (!Engine::arch_supported(a)) continue;
        INFO(name(a));
        IMB_MGR* m = alloc_mb_mgr(0);
        REQUIRE(m);
        switch (a) {
            case Arch::Sse: init_mb_mgr_sse(m); break;
            case Arch::Avx: init_mb_mgr_avx(m); break;
            case Arch::Avx2: init_mb_mgr_avx2(m); break;
            default: init_mb_mgr_avx512(m); break;
        }
        REQUIRE(imb_get_errno(m) == 0);
        for (int bits : {128, 256}) {
            alignas(64) uint8_t kd[1024];
            std::memset(kd, 0xa5, sizeof kd);
            uint8_t key[32];
            std::memset(key, 0x3c, sizeof key);
            auto* k = reinterpret_cast<gcm_key_data*>(kd);
            if (bits == 128) IMB_AES128_GCM_PRE(m, key, k);
            else IMB_AES256_GCM_PRE(m, key, k);
            uint8_t iv[12] = {}, aad[12] = {}, tag[16], buf[1500] = {};
            gcm_context_data ctx;
            if (bits == 128) {
                IMB_AES128_GCM_ENC(m, k, &ctx, buf, buf, sizeof buf, iv, aad, 12, tag, 16);
                IMB_AES128_GCM_DEC(m, k, &ctx, buf, buf, sizeof buf, iv, aad, 12, tag, 16);
            } else {
                IMB_AES256_GCM_ENC(m, k, &ctx, buf, buf, sizeof buf, iv, aad, 12, tag, 16);
                IMB_AES256_GCM_DEC(m, k, &ctx, buf, buf, sizeof buf, iv, aad, 12, tag, 16);
            }
            bool tail_intact = true;
            for (size_t i = SaKey::kExpandedLen; i < sizeof kd; i++) tail_intact &= kd[i] == 0xa5;
            CHECK(tail_intact);
            bool head_written = false;
            for (size_t i = 0; i < 16; i++) head_written |= kd[i] != 0xa5;
            CHECK(head_written);  // the canary would notice a no-op
        }
        free_mb_mgr(m);
    }
}

TEST_CASE("SaKey: expansion checks lengths, clear and move wipe the secret") {
    Engine e;
    REQUIRE(e.init());
    SaKey k;
    CHECK_FALSE(k.valid());
    std::string err;
    // Wrong KEYMAT lengths (key || salt): 16+4, 32+4, 32+4.
    CHECK_FALSE(e.expand_key(k, Aead::AesGcm128, std::vector<uint8_t>(16, 1), &err));
    CHECK(err.find("20") != std::string::npos);
    CHECK_FALSE(e.expand_key(k, Aead::AesGcm256, std::vector<uint8_t>(20, 1), &err));
    CHECK_FALSE(e.expand_key(k, Aead::Chacha20Poly1305, std::vector<uint8_t>(32, 1), &err));
    CHECK_FALSE(k.valid());

    std::vector<uint8_t> km(36);
    for (size_t i = 0; i < km.size(); i++) km[i] = uint8_t(i + 1);
    REQUIRE(e.expand_key(k, Aead::AesGcm256, km, &err));
    CHECK(k.valid());
    CHECK(e.can_use(k));
    CHECK(k.arch() == e.arch());
    CHECK(to_hex(std::vector<uint8_t>(k.salt().begin(), k.salt().end())) == "21222324");

    // Encrypt something with k, move it, and the moved-to key gives the same.
    std::vector<uint8_t> iv(8, 7), aad(8, 9);
    Packet p1{iv, aad, std::vector<uint8_t>(100, 0x55), std::vector<uint8_t>(16)};
    Op op = p1.op(k);
    REQUIRE(e.encrypt({&op, 1}) == 1);

    SaKey moved(std::move(k));
    CHECK_FALSE(k.valid());
    const auto* raw = reinterpret_cast<const unsigned char*>(&k);
    bool all_zero = true;
    for (size_t i = 0; i < sizeof(SaKey); i++) all_zero &= raw[i] == 0;
    CHECK(all_zero);
    Packet p2{iv, aad, std::vector<uint8_t>(100, 0x55), std::vector<uint8_t>(16)};
    op = p2.op(moved);
    REQUIRE(e.encrypt({&op, 1}) == 1);
    CHECK(p1.data == p2.data);
    CHECK(p1.tag == p2.tag);
    // The wiped source key is refused, not used.
    op = p2.op(k);
    CHECK(e.encrypt({&op, 1}) == 0);
    CHECK_FALSE(op.ok);

    moved.clear();
    raw = reinterpret_cast<const unsigned char*>(&moved);
    all_zero = true;
    for (size_t i = 0; i < sizeof(SaKey); i++) all_zero &= raw[i] == 0;
    CHECK(all_zero);
    CHECK_FALSE(moved.valid());
}

TEST_CASE("malformed ops fail closed without disturbing the rest of the burst") {
    Engine e;
    REQUIRE(e.init());
    std::mt19937_64 rng(7);
    std::vector<uint8_t> km = random_bytes(rng, 20);
    SaKey good, empty;
    REQUIRE(e.expand_key(good, Aead::AesGcm128, km));

    std::vector<Packet> ps(8);
    for (auto& p : ps) p = Packet{random_bytes(rng, 8), random_bytes(rng, 8), random_bytes(rng, 64),
                                  std::vector<uint8_t>(16)};
    std::vector<Op> ops;
    for (auto& p : ps) ops.push_back(p.op(good));
    ops[1].key = nullptr;
    ops[2].key = &empty;
    ops[3].iv = nullptr;
    ops[4].tag = nullptr;
    ops[5].data = nullptr;  // with len 64
    ops[6].aad = nullptr;   // with aad_len 8
    CHECK(e.encrypt(ops) == 2);
    for (size_t i = 0; i < ops.size(); i++) CHECK(ops[i].ok == (i == 0 || i == 7));

    // A zero-length payload needs no data pointer.
    Packet z{random_bytes(rng, 8), random_bytes(rng, 8), {}, std::vector<uint8_t>(16)};
    Op zo = z.op(good);
    zo.data = nullptr;
    CHECK(e.encrypt({&zo, 1}) == 1);
    zo.data = nullptr;
    CHECK(e.decrypt({&zo, 1}) == 1);

    // A key expanded for another arch path (different gcm_key_data layout) is refused.
    for (Arch a : {Arch::Sse, Arch::Avx, Arch::Avx2, Arch::Avx512}) {
        if (a == e.arch() || !Engine::arch_supported(a)) continue;
        Engine other;
        REQUIRE(other.init(a));
        SaKey foreign;
        REQUIRE(other.expand_key(foreign, Aead::AesGcm128, km));
        CHECK_FALSE(e.can_use(foreign));
        Op fo = ps[0].op(foreign);
        CHECK(e.encrypt({&fo, 1}) == 0);
        CHECK_FALSE(fo.ok);
    }
}

TEST_CASE("bursts larger than the IPsec-MB job queue, mixed ciphers, per-op verdicts") {
    // 700 ops > IMB_MAX_JOBS (256): job slots (and their nonce/tag scratch)
    // are reused within one call.
    for (const auto& cfg : engine_configs()) {
        auto e = make_engine(cfg);
        INFO(cfg.label());
        std::mt19937_64 rng(42);
        std::vector<std::vector<uint8_t>> kms;
        std::vector<SaKey> keys(6);
        std::vector<Aead> algs;
        for (size_t i = 0; i < keys.size(); i++) {
            Aead a = kAll[i % 3];
            kms.push_back(random_bytes(rng, keymat_len(a)));
            algs.push_back(a);
            REQUIRE(e->expand_key(keys[i], a, kms.back()));
        }
        constexpr size_t n = 700;
        std::vector<Packet> ps(n);
        std::vector<std::vector<uint8_t>> plain(n);
        std::vector<Op> ops(n);
        std::vector<size_t> which(n);
        for (size_t i = 0; i < n; i++) {
            which[i] = rng() % keys.size();
            ps[i] = Packet{random_bytes(rng, 8), random_bytes(rng, rng() % 2 ? 8 : 12),
                           random_bytes(rng, rng() % 1500), std::vector<uint8_t>(16)};
            plain[i] = ps[i].data;
            ops[i] = ps[i].op(keys[which[i]]);
        }
        CHECK(e->encrypt(ops) == n);
        size_t bad_tags = 0;
        for (size_t i = 0; i < n; i++) {
            // Every op checked against OpenSSL.
            size_t k = which[i];
            std::vector<uint8_t> nonce = nonce_of(kms[k], algs[k], ps[i].iv);
            std::vector<uint8_t> d = ps[i].data;
            std::vector<uint8_t> t = ps[i].tag;
            REQUIRE(ossl(false, algs[k], kms[k].data(), nonce.data(), ps[i].aad, d, t.data()));
            REQUIRE(d == plain[i]);
            if (i % 5 == 2) {
                ps[i].tag[15] ^= 0x01;
                bad_tags++;
            }
            ops[i] = ps[i].op(keys[k]);
        }
        CHECK(e->decrypt(ops) == n - bad_tags);
        for (size_t i = 0; i < n; i++) {
            CHECK(ops[i].ok == (i % 5 != 2));
            if (i % 5 != 2) CHECK(ps[i].data == plain[i]);
        }
    }
}

TEST_CASE("differential: nimbus and OpenSSL EVP agree both ways; any flipped bit fails") {
    std::mt19937_64 rng(20240607);
    std::vector<size_t> sizes = {0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 1420, 1500, 9000};
    for (int i = 0; i < 12; i++) sizes.push_back(rng() % 9001);
    for (const auto& cfg : engine_configs()) {
        auto e = make_engine(cfg);
        for (Aead a : kAll) {
            if (a == Aead::Chacha20Poly1305 && cfg.path == GcmPath::Job) continue;  // same code as Direct
            for (size_t aad_len : {kAadLen, kAadLenEsn}) {
                for (size_t len : sizes) {
                    INFO(cfg.label() << " " << name(a) << " aad=" << aad_len << " len=" << len);
                    std::vector<uint8_t> km = random_bytes(rng, keymat_len(a));
                    SaKey key;
                    REQUIRE(e->expand_key(key, a, km));
                    const std::vector<uint8_t> pt = random_bytes(rng, len);
                    Packet p{random_bytes(rng, kIvLen), random_bytes(rng, aad_len), pt,
                             std::vector<uint8_t>(kTagLen)};
                    std::vector<uint8_t> nonce = nonce_of(km, a, p.iv);

                    // nimbus encrypts, OpenSSL decrypts.
                    Op op = p.op(key);
                    REQUIRE(e->encrypt({&op, 1}) == 1);
                    std::vector<uint8_t> d = p.data;
                    std::vector<uint8_t> t = p.tag;
                    CHECK(ossl(false, a, km.data(), nonce.data(), p.aad, d, t.data()));
                    CHECK(d == pt);
                    if (len >= 16) CHECK(p.data != pt);  // it did encrypt

                    // OpenSSL encrypts, nimbus decrypts.
                    std::vector<uint8_t> c = pt;
                    std::vector<uint8_t> tag(kTagLen);
                    REQUIRE(ossl(true, a, km.data(), nonce.data(), p.aad, c, tag.data()));
                    CHECK(c == p.data);   // same ciphertext
                    CHECK(tag == p.tag);  // same tag
                    Packet q{p.iv, p.aad, c, tag};
                    op = q.op(key);
                    CHECK(e->decrypt({&op, 1}) == 1);
                    CHECK(op.ok);
                    CHECK(q.data == pt);

                    // One flipped bit in ciphertext, tag or AAD: nimbus and OpenSSL refuse.
                    for (int what = 0; what < 3; what++) {
                        if (what == 0 && len == 0) continue;
                        Packet x{p.iv, p.aad, c, tag};
                        auto& v = what == 0 ? x.data : what == 1 ? x.tag : x.aad;
                        size_t bitpos = rng() % (v.size() * 8);
                        v[bitpos / 8] ^= uint8_t(1u << (bitpos % 8));
                        std::vector<uint8_t> xd = x.data, xt = x.tag;
                        CHECK_FALSE(ossl(false, a, km.data(), nonce.data(), x.aad, xd, xt.data()));
                        op = x.op(key);
                        CHECK(e->decrypt({&op, 1}) == 0);
                        CHECK_FALSE(op.ok);
                    }
                }
            }
        }
    }
}
