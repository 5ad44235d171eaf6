#include <catch2/catch.hpp>

#include <random>

#include <openssl/evp.h>

#include "control/ike/codec.h"
#include "control/ike/keymat.h"
#include "control/ike/sk.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {


std::vector<uint8_t> seq(uint8_t from, size_t n) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; i++) v[i] = uint8_t(from + i);
    return v;
}

// Reference AEAD decryption straight through OpenSSL, with the RFC 5282
// layout spelled out: nonce = salt | IV, AAD = header .. SK header.
std::optional<std::vector<uint8_t>> ref_open(const char* cipher, std::span<const uint8_t> key,
                                             std::span<const uint8_t> salt, std::span<const uint8_t> msg,
                                             size_t sk_offset) {
    size_t aad_len = sk_offset + 4;
    auto iv = msg.subspan(aad_len, 8);
    auto ct = msg.subspan(aad_len + 8, msg.size() - aad_len - 8 - 16);
    auto tag = msg.last(16);
    std::vector<uint8_t> nonce(salt.begin(), salt.end());
    nonce.insert(nonce.end(), iv.begin(), iv.end());
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, cipher, nullptr);
    std::vector<uint8_t> pt(ct.size() + 16);
    int len = 0, ok = 1;
    ok &= EVP_DecryptInit_ex2(ctx, c, key.data(), nonce.data(), nullptr);
    ok &= EVP_DecryptUpdate(ctx, nullptr, &len, msg.data(), int(aad_len));
    ok &= EVP_DecryptUpdate(ctx, pt.data(), &len, ct.data(), int(ct.size()));
    ok &= EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, const_cast<uint8_t*>(tag.data()));
    ok &= EVP_DecryptFinal_ex(ctx, pt.data() + ct.size(), &len);
    EVP_CIPHER_free(c);
    EVP_CIPHER_CTX_free(ctx);
    if (ok != 1) return std::nullopt;
    pt.resize(ct.size());
    return pt;
}

Header info_header(uint64_t spi_i, uint64_t spi_r, uint32_t mid) {
    Header h;
    h.spi_i = spi_i;
    h.spi_r = spi_r;
    h.exchange = INFORMATIONAL;
    h.message_id = mid;
    return h;
}

}  // namespace

// RFC 7634 Appendix B: an INFORMATIONAL message carrying a SET_WINDOW_SIZE
// notify, protected with ChaCha20-Poly1305 (key 80..9f, salt a0a1a2a3,
// IV 1011121314151617). Byte-exact, both directions.
TEST_CASE("ike: RFC 7634 Appendix B IKEv2 ChaCha20-Poly1305 example", "[ike]") {
    auto keymat = seq(0x80, 36);   // 80..9f key, a0..a3 salt
    auto c = SkCipher::create(ENCR_CHACHA20_POLY1305, 0, keymat);
    REQUIRE(c);
    c->set_iv_counter_for_test(0x1011121314151617ull);

    const std::string exp_hex =
        "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d7"   // SPIi, SPIr
        "2e20250000000009"                   // next SK, v2.0, INFORMATIONAL, flags 0, MID 9
        "00000045"                           // length 69
        "29000029"                           // SK: next Notify, length 41
        "1011121314151617"                   // IV
        "610394701f8d017f7c12924889"         // ciphertext (Notify + Pad Length)
        "6b71bfe25236efd7cdc67066906315b2";  // ICV

    ByteWriter window;
    window.u32(10);
    auto wire = MessageBuilder(info_header(0xc0c1c2c3c4c5c6c7ull, 0xd0d1d2d3d4d5d6d7ull, 9))
                    .add_protected(make_notify(N_SET_WINDOW_SIZE, window.take()))
                    .build(*c);
    REQUIRE(wire);
    CHECK(to_hex(*wire) == exp_hex);

    // And back: parse, open, find the notify.
    auto dgram = from_hex(exp_hex);
    Message m;
    REQUIRE(parse_message(dgram, m).ok());
    CHECK(m.header.exchange == INFORMATIONAL);
    CHECK(m.header.message_id == 9);
    REQUIRE(m.sk());
    CHECK(m.sk()->first_inner == PT_NOTIFY);
    auto e = open_message(dgram, m, *c);
    INFO(e.str());
    REQUIRE(e.ok());
    const NotifyPayload* n = m.notify(N_SET_WINDOW_SIZE);
    REQUIRE(n);
    CHECK(to_hex(n->data) == "0000000a");
    CHECK(n->protocol == PROTO_NONE);
    CHECK(n->spi.empty());
}

TEST_CASE("ike: AES-GCM SK payloads round-trip and match an independent RFC 5282 decryption", "[ike]") {
    std::mt19937 g(5282);
    for (uint16_t bits : {128, 256}) {
        INFO("AES-" << bits << "-GCM-16");
        std::vector<uint8_t> keymat(encr_keymat_len(ENCR_AES_GCM_16, bits));
        for (auto& b : keymat) b = uint8_t(g());
        auto enc = SkCipher::create(ENCR_AES_GCM_16, bits, keymat);
        auto dec = SkCipher::create(ENCR_AES_GCM_16, bits, keymat);
        REQUIRE(enc);
        REQUIRE(dec);

        Header h;
        h.spi_i = 0x1111111111111111ull;
        h.spi_r = 0x2222222222222222ull;
        h.exchange = IKE_AUTH;
        h.flags = kFlagInitiator;
        h.message_id = 1;
        auto wire = MessageBuilder(h)
                        .add_protected(make_id(true, ID_FQDN, {'e', 'd', 'g', 'e'}))
                        .add_protected(make_auth(AUTH_PSK, std::vector<uint8_t>(32, 0x5a)))
                        .add_protected(make_notify(N_INITIAL_CONTACT))
                        .build(*enc);
        REQUIRE(wire);
        Message m;
        REQUIRE(parse_message(*wire, m).ok());
        CHECK(m.header.length == wire->size());
        REQUIRE(m.sk());
        CHECK(m.sk()->offset == kHeaderLen);
        REQUIRE(open_message(*wire, m, *dec).ok());
        REQUIRE(m.inner.size() == 3);
        CHECK(m.get<IdPayload>(PT_IDI)->data == std::vector<uint8_t>{'e', 'd', 'g', 'e'});
        CHECK(m.get<AuthPayload>(PT_AUTH)->method == AUTH_PSK);
        CHECK(m.notify(N_INITIAL_CONTACT));

        // The same bytes decrypt with OpenSSL used directly.
        const char* name = bits == 128 ? "AES-128-GCM" : "AES-256-GCM";
        auto key = std::span<const uint8_t>(keymat).first(bits / 8);
        auto salt = std::span<const uint8_t>(keymat).last(4);
        auto pt = ref_open(name, key, salt, *wire, kHeaderLen);
        REQUIRE(pt);
        CHECK(pt->back() == 0);   // Pad Length
        std::vector<Payload> inner;
        REQUIRE(parse_chain(std::span<const uint8_t>(*pt).first(pt->size() - 1), PT_IDI, 0, true, inner).ok());
        CHECK(inner == m.inner);
    }
}

TEST_CASE("ike: any change to a protected message is detected", "[ike]") {
    auto keymat = seq(1, 36);
    auto enc = SkCipher::create(ENCR_AES_GCM_16, 256, keymat);
    auto dec = SkCipher::create(ENCR_AES_GCM_16, 256, keymat);
    REQUIRE(enc);
    auto wire = *MessageBuilder(info_header(1, 2, 3))
                     .add_protected(make_delete(PROTO_ESP, {0xaabbccdd}))
                     .build(*enc);
    {
        Message m;
        REQUIRE(parse_message(wire, m).ok());
        REQUIRE(open_message(wire, m, *dec).ok());
    }
    // Flip one bit at every position: header (AAD), SK header (AAD), IV,
    // ciphertext, ICV. Each must fail to parse or fail to open.
    size_t failures = 0;
    for (size_t i = 0; i < wire.size(); i++) {
        auto bad = wire;
        bad[i] ^= 0x01;
        Message m;
        auto pe = parse_message(bad, m);
        bool refused = !pe.ok() || !m.sk() || !open_message(bad, m, *dec).ok();
        if (refused) failures++;
        else
            FAIL_CHECK("bit flip at octet " << i << " went undetected");
    }
    CHECK(failures == wire.size());

    // Wrong key.
    auto other = seq(2, 36);
    auto wrong = SkCipher::create(ENCR_AES_GCM_16, 256, other);
    Message m;
    REQUIRE(parse_message(wire, m).ok());
    auto e = open_message(wire, m, *wrong);
    CHECK(e.code == ParseCode::Decrypt);
    CHECK(m.inner.empty());
    CHECK_FALSE(m.opened);

    // A different cipher with the same key material.
    auto cc = SkCipher::create(ENCR_CHACHA20_POLY1305, 0, keymat);
    CHECK(open_message(wire, m, *cc).code == ParseCode::Decrypt);
}

TEST_CASE("ike: SK padding: any padding value is accepted, a Pad Length past the start is not", "[ike]") {
    auto keymat = seq(7, 20);
    auto c = SkCipher::create(ENCR_AES_GCM_16, 128, keymat);
    REQUIRE(c);
    std::vector<uint8_t> aad = {1, 2, 3, 4};
    std::array<uint8_t, 8> iv{9, 9, 9, 9, 9, 9, 9, 9};
    auto seal_raw = [&](std::vector<uint8_t> pt) {
        std::vector<uint8_t> body(iv.begin(), iv.end());
        body.resize(8 + pt.size() + 16);
        REQUIRE(c->seal(aad, iv, pt, body.data() + 8));
        return body;
    };
    // inner "abc", 5 octets of arbitrary padding, Pad Length 5.
    auto body = seal_raw({'a', 'b', 'c', 0xff, 0x13, 0x00, 0x77, 0x05, 5});
    auto pt = sk_open(*c, aad, body);
    REQUIRE(pt);
    CHECK(*pt == std::vector<uint8_t>{'a', 'b', 'c'});
    // Pad Length consuming everything: empty inner.
    pt = sk_open(*c, aad, seal_raw({1, 2, 2}));
    REQUIRE(pt);
    CHECK(pt->empty());
    // Pad Length 3 with only 2 octets before it.
    CHECK_FALSE(sk_open(*c, aad, seal_raw({1, 2, 3})));
    // Too short to hold IV, Pad Length and ICV.
    CHECK_FALSE(sk_open(*c, aad, std::vector<uint8_t>(24, 0)));
    CHECK_FALSE(sk_open(*c, aad, {}));
    // AAD matters.
    std::vector<uint8_t> aad2 = {1, 2, 3, 5};
    CHECK_FALSE(sk_open(*c, aad2, body));
}

TEST_CASE("ike: SK cipher creation checks transform and key material length", "[ike]") {
    CHECK(SkCipher::create(ENCR_AES_GCM_16, 128, seq(0, 20)));
    CHECK(SkCipher::create(ENCR_AES_GCM_16, 256, seq(0, 36)));
    CHECK(SkCipher::create(ENCR_CHACHA20_POLY1305, 0, seq(0, 36)));
    CHECK_FALSE(SkCipher::create(ENCR_AES_GCM_16, 128, seq(0, 16)));   // salt missing
    CHECK_FALSE(SkCipher::create(ENCR_AES_GCM_16, 256, seq(0, 20)));
    CHECK_FALSE(SkCipher::create(ENCR_AES_GCM_16, 192, seq(0, 28)));
    CHECK_FALSE(SkCipher::create(ENCR_CHACHA20_POLY1305, 256, seq(0, 36)));
    CHECK_FALSE(SkCipher::create(ENCR_AES_CBC, 128, seq(0, 16)));
}

TEST_CASE("ike: SK IVs never repeat under one cipher", "[ike]") {
    auto c = SkCipher::create(ENCR_AES_GCM_16, 128, seq(0, 20));
    REQUIRE(c);
    auto a = c->next_iv(), b = c->next_iv();
    CHECK(a != b);
    CHECK(to_hex(a) == "0000000000000001");
    CHECK(to_hex(b) == "0000000000000002");
    // Two messages with the same content get different ciphertexts.
    auto m1 = *MessageBuilder(info_header(1, 2, 0)).build(*c);
    auto m2 = *MessageBuilder(info_header(1, 2, 0)).build(*c);
    CHECK(m1.size() == m2.size());
    CHECK(m1 != m2);
}

TEST_CASE("ike: an empty INFORMATIONAL is an SK payload with nothing inside", "[ike]") {
    auto enc = SkCipher::create(ENCR_CHACHA20_POLY1305, 0, seq(0x40, 36));
    auto dec = SkCipher::create(ENCR_CHACHA20_POLY1305, 0, seq(0x40, 36));
    auto wire = MessageBuilder(info_header(5, 6, 7)).build(*enc);
    REQUIRE(wire);
    CHECK(wire->size() == kHeaderLen + 4 + sk_overhead());
    Message m;
    REQUIRE(parse_message(*wire, m).ok());
    CHECK(m.header.next_payload == PT_SK);
    CHECK(m.sk()->first_inner == PT_NONE);
    REQUIRE(open_message(*wire, m, *dec).ok());
    CHECK(m.opened);
    CHECK(m.inner.empty());
}

// McGrew & Viega GCM test cases 4 (AES-128) and 16 (AES-256) in RFC 4106
// form: the last 4 octets of the key material are the salt, the 8-octet IV
// follows it in the nonce — the same construction RFC 5282 uses for SK.
TEST_CASE("ike: AES-GCM-16 AEAD known answers with salt | IV nonces", "[ike]") {
    struct Case {
        uint16_t bits;
        const char* key_salt;
        const char* out;
    } cases[] = {
        {128, "feffe9928665731c6d6a8f9467308308cafebabe",
         "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
         "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc"
         "3221a5db94fae95ae7121a47"},
        {256, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308cafebabe",
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
         "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f66276fc6ece"
         "0f4e1768cddf8853bb2d551b"},
    };
    auto iv = from_hex("facedbaddecaf888");
    auto aad = from_hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    auto pt = from_hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                       "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    for (auto& c : cases) {
        INFO(c.bits);
        auto k = SkCipher::create(ENCR_AES_GCM_16, c.bits, from_hex(c.key_salt));
        REQUIRE(k);
        std::vector<uint8_t> out(pt.size() + 16);
        std::span<const uint8_t, 8> ivs(iv.data(), 8);
        REQUIRE(k->seal(aad, ivs, pt, out.data()));
        CHECK(to_hex(out) == c.out);
        std::vector<uint8_t> back(pt.size());
        REQUIRE(k->open(aad, ivs, out, back.data()));
        CHECK(back == pt);
        out.back() ^= 0x80;
        CHECK_FALSE(k->open(aad, ivs, out, back.data()));
    }
}
