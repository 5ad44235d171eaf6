#include <catch2/catch.hpp>

#include "control/ike/dh.h"
#include "control/ike/messages.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

std::vector<uint8_t> H(std::string_view s) { return from_hex(s); }

std::string x25519(std::string_view scalar, std::string_view u) {
    auto k = DhKey::from_private_for_test(CURVE25519, H(scalar));
    REQUIRE(k);
    auto s = k->shared_secret(H(u));
    return s ? to_hex(s->span()) : "refused";
}

}  // namespace

TEST_CASE("ike: X25519 matches RFC 7748 §5.2 scalar multiplication vectors", "[ike]") {
    CHECK(x25519("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                 "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c") ==
          "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    CHECK(x25519("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                 "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493") ==
          "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
}

TEST_CASE("ike: X25519 RFC 7748 §5.2 iterated vector (1 and 1000 iterations)", "[ike]") {
    std::vector<uint8_t> k(32, 0), u(32, 0);
    k[0] = u[0] = 9;
    for (int i = 1; i <= 1000; i++) {
        auto key = DhKey::from_private_for_test(CURVE25519, k);
        REQUIRE(key);
        auto r = key->shared_secret(u);
        REQUIRE(r);
        u = k;
        k.assign(r->data(), r->data() + r->size());
        if (i == 1) CHECK(to_hex(k) == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
    CHECK(to_hex(k) == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

TEST_CASE("ike: X25519 RFC 7748 §6.1 Diffie-Hellman", "[ike]") {
    auto alice = DhKey::from_private_for_test(CURVE25519, H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    auto bob = DhKey::from_private_for_test(CURVE25519, H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
    REQUIRE(alice);
    REQUIRE(bob);
    CHECK(to_hex(alice->public_value()) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    CHECK(to_hex(bob->public_value()) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    auto s1 = alice->shared_secret(bob->public_value());
    auto s2 = bob->shared_secret(alice->public_value());
    REQUIRE(s1);
    REQUIRE(s2);
    CHECK(to_hex(s1->span()) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    CHECK(*s1 == *s2);
}

TEST_CASE("ike: Curve25519 in IKEv2 matches RFC 8031 Appendix A", "[ike]") {
    auto i = DhKey::from_private_for_test(CURVE25519, H("751fb4308655b476b6789b7325f9ea8cddd16a58533ff6d9e60009464a5f9d94"));
    auto r = DhKey::from_private_for_test(CURVE25519, H("0a54645253290d60ddadd0e030bacd9e5501efdc220755a1e978f1b839a05688"));
    REQUIRE(i);
    REQUIRE(r);
    CHECK(i->group() == CURVE25519);
    CHECK(to_hex(i->public_value()) == "48d5ddd4061257ba166fa3f9bbdb74f1a4e81c089384fa77f790709f0dfbc766");
    CHECK(to_hex(r->public_value()) == "0be7c1f5aad87d7e448662673298a443478b859745179eaf564c79c0ef6eee25");
    auto s = i->shared_secret(r->public_value());
    auto s2 = r->shared_secret(i->public_value());
    REQUIRE(s);
    REQUIRE(s2);
    CHECK(to_hex(s->span()) == "c74950607a12327f3204d94b6825bfb068b7f8319a9e3708ed3d43ce8130c950");
    CHECK(*s == *s2);
}

TEST_CASE("ike: X25519 refuses small-order peer values (all-zero secret) and wrong lengths", "[ike]") {
    auto k = DhKey::generate(CURVE25519);
    REQUIRE(k);
    const char* low_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",   // 0
        "0100000000000000000000000000000000000000000000000000000000000000",   // 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",   // order 8
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",   // order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",   // p - 1
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",   // p (= 0)
    };
    for (const char* u : low_order) {
        INFO(u);
        CHECK_FALSE(k->shared_secret(H(u)));
    }
    std::vector<uint8_t> good(k->public_value().begin(), k->public_value().end());
    CHECK(k->shared_secret(good));
    CHECK_FALSE(k->shared_secret(std::span<const uint8_t>(good).first(31)));
    good.push_back(0);
    CHECK_FALSE(k->shared_secret(good));
    CHECK_FALSE(k->shared_secret({}));
}

// RFC 5114 §A.6/§A.7 ECDH test data for the 256- and 384-bit random ECP
// groups (the NIST P-256/P-384 curves of RFC 5903 groups 19 and 20).
TEST_CASE("ike: ECP groups 19 and 20 match RFC 5114 test data in RFC 5903 encoding", "[ike]") {
    struct Case {
        uint16_t group;
        const char *d_a, *d_b, *pub_a, *pub_b, *shared;
    } cases[] = {
        {ECP_256, "814264145f2f56f2e96a8e337a1284993faf432a5abce59e867b7291d507a3af",
         "2ce1788ec197e096db95a200cc0ab26a19ce6bccad562b8eee1b593761cf7f41",
         "2af502f3be8952f2c9b5a8d4160d09e97165be50bc42ae4a5e8d3b4ba83aeb15"
         "eb0faf4ca986c4d38681a0f9872d79d56795bd4bff6e6de3c0f5015ece5efd85",
         "b120de4aa36492795346e8de6c2c8646ae06aaea279fa775b3ab0715f6ce51b0"
         "9f1b7eece20d7b5ed8ec685fa3f071d83727027092a8411385c34dde5708b2b6",
         "dd0f5396219d1ea393310412d19a08f1f5811e9dc8ec8eea7f80d21c820c2788"},
        {ECP_384,
         "d27335ea71664af244dd14e9fd1260715dfd8a7965571c48d709ee7a7962a156d706a90cbcb5df2986f05feadb9376f1",
         "52d1791fdb4b70f89c0f00d456c2f7023b6125262c36a7df1f80231121cce3d39be52e00c194a4132c4a6c768bcd94d2",
         "793148f1787634d5da4c6d9074417d05e057ab62f82054d10ee6b0403d6279547e6a8ea9d1fd77427d016fe27a8b8c66"
         "c6c41294331d23e6f480f4fb4cd40504c947392e94f4c3f06b8f398bb29e42368f7a685923de3b67baced214a1a1d128",
         "5cd42ab9c41b5347f74b8d4efb708b3d5b36db65915359b44abc17647b6b9999789d72a84865ae2f223f12b5a1abc120"
         "e171458feaa939aaa3a8bfac46b404bd8f6d5b348c0fa4d80ceca16356ca933240bde8723415a8ece035b0edf36755de",
         "5ea1fc4af7256d2055981b110575e0a8cae53160137d904c59d926eb1b8456e427aa8a4540884c37de159a58028abc0e"},
    };
    for (auto& c : cases) {
        INFO("group " << c.group);
        auto a = DhKey::from_private_for_test(c.group, H(c.d_a));
        auto b = DhKey::from_private_for_test(c.group, H(c.d_b));
        REQUIRE(a);
        REQUIRE(b);
        CHECK(a->public_value().size() == dh_public_len(c.group));
        CHECK(to_hex(a->public_value()) == c.pub_a);
        CHECK(to_hex(b->public_value()) == c.pub_b);
        auto s = a->shared_secret(H(c.pub_b));
        REQUIRE(s);
        CHECK(to_hex(s->span()) == c.shared);   // RFC 5903 §7: x only
        auto s2 = b->shared_secret(H(c.pub_a));
        REQUIRE(s2);
        CHECK(*s == *s2);
    }
}

TEST_CASE("ike: ECP peer values are fully validated", "[ike]") {
    for (uint16_t group : {ECP_256, ECP_384, ECP_521}) {
        INFO("group " << group);
        auto a = DhKey::generate(group);
        auto b = DhKey::generate(group);
        REQUIRE(a);
        REQUIRE(b);
        std::vector<uint8_t> pb(b->public_value().begin(), b->public_value().end());
        REQUIRE(pb.size() == dh_public_len(group));
        auto s = a->shared_secret(pb);
        REQUIRE(s);
        CHECK(s->size() == pb.size() / 2);
        CHECK(*s == *b->shared_secret(a->public_value()));

        auto off_curve = pb;
        off_curve.back() ^= 1;   // y changed: not on the curve
        CHECK_FALSE(a->shared_secret(off_curve));
        CHECK_FALSE(a->shared_secret(std::vector<uint8_t>(pb.size(), 0)));   // (0, 0)
        CHECK_FALSE(a->shared_secret(std::vector<uint8_t>(pb.size(), 0xff)));   // coordinates >= p
        CHECK_FALSE(a->shared_secret(std::span<const uint8_t>(pb).first(pb.size() - 1)));
        std::vector<uint8_t> with_prefix(pb.size() + 1, 0x04);
        std::copy(pb.begin(), pb.end(), with_prefix.begin() + 1);
        CHECK_FALSE(a->shared_secret(with_prefix));   // RFC 5903 §7: no point-format octet
    }
}

TEST_CASE("ike: DH group support table and fresh keys", "[ike]") {
    struct Case {
        uint16_t group;
        size_t len;
    } cases[] = {{CURVE25519, 32}, {ECP_256, 64}, {ECP_384, 96}, {ECP_521, 132},
                 {MODP_2048, 0},   {CURVE448, 0}, {DH_NONE, 0},  {9999, 0}};
    for (auto& c : cases) {
        INFO(c.group);
        CHECK(dh_public_len(c.group) == c.len);
        auto k = DhKey::generate(c.group);
        CHECK(bool(k) == (c.len != 0));
        if (k) CHECK(k->public_value().size() == c.len);
    }
    // Two fresh keys differ.
    auto k1 = DhKey::generate(CURVE25519), k2 = DhKey::generate(CURVE25519);
    CHECK(to_hex(k1->public_value()) != to_hex(k2->public_value()));
}
