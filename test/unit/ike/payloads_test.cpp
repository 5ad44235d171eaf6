#include <catch2/catch.hpp>

#include "control/ike/payloads.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

std::vector<uint8_t> H(std::string_view s) { return from_hex(s); }

// Serialise one payload alone (generic header included) and parse it back.
std::vector<uint8_t> serialise(const Payload& p) {
    ByteWriter w;
    std::vector<Payload> v{p};
    REQUIRE(write_chain(w, v));
    return w.take();
}

Payload reparse(const std::vector<uint8_t>& wire, uint8_t type) {
    std::vector<Payload> out;
    auto e = parse_chain(wire, type, 0, false, out);
    INFO(e.str());
    REQUIRE(e.ok());
    REQUIRE(out.size() == 1);
    return out[0];
}

// Parse a body for `type` (generic header added here).
ParseError parse_body(uint8_t type, const std::vector<uint8_t>& body) {
    size_t len = 4 + body.size();
    std::vector<uint8_t> wire = {PT_NONE, 0, uint8_t(len >> 8), uint8_t(len)};
    wire.insert(wire.end(), body.begin(), body.end());
    std::vector<Payload> out;
    return parse_chain(wire, type, 0, false, out);
}

TrafficSelector ts_range(const char* a, const char* b, uint8_t proto, uint16_t p0, uint16_t p1) {
    TrafficSelector t;
    t.start = *IpAddr::parse(a);
    t.end = *IpAddr::parse(b);
    t.type = t.start.is_v4() ? TS_IPV4_ADDR_RANGE : TS_IPV6_ADDR_RANGE;
    t.ip_proto = proto;
    t.start_port = p0;
    t.end_port = p1;
    return t;
}

}  // namespace

TEST_CASE("ike: SA payload encodes proposals, transforms and key length (§3.3)", "[ike]") {
    Proposal p;
    p.number = 1;
    p.protocol = PROTO_IKE;
    p.transforms = {{TT_ENCR, ENCR_AES_GCM_16, 256, {}}, {TT_PRF, PRF_HMAC_SHA2_256, 0, {}},
                    {TT_DH, CURVE25519, 0, {}}};
    auto wire = serialise(make_sa(SaPayload{{p}}));
    // Worked out by hand from §3.3.1/§3.3.2/§3.3.5:
    //   generic 00 00 0028 | proposal 00 00 0024 01 01 00 03
    //   transform 03 00 000c 01 00 0014 800e 0100   (ENCR 20, Key Length 256)
    //   transform 03 00 0008 02 00 0005             (PRF 5)
    //   transform 00 00 0008 04 00 001f             (DH 31, last)
    CHECK(to_hex(wire) ==
          "00000028"
          "0000002401010003"
          "0300000c01000014800e0100"
          "0300000802000005"
          "000000080400001f");
    auto back = reparse(wire, PT_SA);
    CHECK(*back.as<SaPayload>() == SaPayload{{p}});
}

TEST_CASE("ike: every typed payload round-trips", "[ike]") {
    Proposal esp;
    esp.number = 2;
    esp.protocol = PROTO_ESP;
    esp.spi = {0xde, 0xad, 0xbe, 0xef};
    esp.transforms = {{TT_ENCR, ENCR_CHACHA20_POLY1305, 0, {}},
                      {TT_ESN, ESN_YES, 0, {}},
                      {TT_ESN, ESN_NO, 0, {}},
                      {TT_ENCR, 1234, 0, {Attribute{17, true, 5, {}}, Attribute{18, false, 0, {1, 2, 3}}}}};
    Proposal ike;
    ike.protocol = PROTO_IKE;
    ike.transforms = {{TT_ENCR, ENCR_AES_GCM_16, 128, {}}};

    std::vector<Payload> all = {
        make_sa(SaPayload{{ike, esp}}),
        make_ke(CURVE25519, std::vector<uint8_t>(32, 0x11)),
        make_nonce(std::vector<uint8_t>(32, 0x22)),
        make_id(true, ID_FQDN, {'s', 'i', 't', 'e'}),
        make_id(false, ID_DER_ASN1_DN, H("3011310f300d06035504030c0673746f7265")),
        make_cert(CERT_X509_SIGNATURE, H("3082")),
        make_certreq(CERT_X509_SIGNATURE, std::vector<uint8_t>(40, 0x33)),
        make_auth(AUTH_DIGITAL_SIGNATURE, H("0c300a06082a8648ce3d0403030102")),
        make_notify(N_NAT_DETECTION_SOURCE_IP, std::vector<uint8_t>(20, 0x44)),
        make_notify(N_REKEY_SA, {}, PROTO_ESP, {1, 2, 3, 4}),
        make_delete(PROTO_ESP, {0x01020304, 0xa0b0c0d0}),
        make_delete(PROTO_IKE),
        make_vendor(H("882fe56d6fd20dbc2251613b2ebe5beb")),
        make_ts(true, {TrafficSelector::from_prefix(*Prefix::parse("10.16.1.0/24")),
                       ts_range("2001:db8::", "2001:db8::ffff", 17, 500, 4500)}),
        make_ts(false, {ts_range("0.0.0.0", "255.255.255.255", 0, 0, 65535)}),
        make_cp(CFG_REQUEST, {{CFG_INTERNAL_IP4_ADDRESS, {}}, {CFG_INTERNAL_IP4_DNS, {8, 8, 8, 8}}}),
        Payload{PT_EAP, false, OpaquePayload{{1, 2, 0, 5, 1}}},
    };
    ByteWriter w;
    REQUIRE(write_chain(w, all));
    std::vector<Payload> back;
    auto e = parse_chain(w.data(), all.front().type, 0, false, back);
    INFO(e.str());
    REQUIRE(e.ok());
    REQUIRE(back.size() == all.size());
    for (size_t i = 0; i < all.size(); i++) {
        INFO("payload " << i << " " << payload_name(all[i].type));
        CHECK(back[i] == all[i]);
    }
    // Serialising what we parsed gives the same octets.
    ByteWriter w2;
    REQUIRE(write_chain(w2, back));
    CHECK(w2.data() == w.data());
}

TEST_CASE("ike: payload wire forms for Notify, Delete, TS, KE, ID", "[ike]") {
    CHECK(to_hex(serialise(make_notify(N_COOKIE, {0xab, 0xcd}))) == "0000000a00004006abcd");
    CHECK(to_hex(serialise(make_notify(N_REKEY_SA, {}, PROTO_ESP, {1, 2, 3, 4}))) == "0000000c0304400901020304");
    CHECK(to_hex(serialise(make_delete(PROTO_ESP, {0x11223344}))) == "0000000c0304000111223344");
    CHECK(to_hex(serialise(make_delete(PROTO_IKE))) == "0000000801000000");
    CHECK(to_hex(serialise(make_ke(ECP_256, {9}))) == "0000000900130000" "09");
    CHECK(to_hex(serialise(make_id(true, ID_IPV4_ADDR, {192, 0, 2, 1}))) == "0000000c01000000c0000201");
    CHECK(to_hex(serialise(make_ts(true, {TrafficSelector::from_prefix(*Prefix::parse("10.16.1.0/24"), 6)}))) ==
          "00000018" "01000000" "07060010" "0000ffff" "0a100100" "0a1001ff");
    CHECK(to_hex(serialise(make_auth(AUTH_PSK, {0xaa}))) == "0000000902000000aa");
}

TEST_CASE("ike: traffic selectors from prefixes cover exactly the prefix", "[ike]") {
    auto t = TrafficSelector::from_prefix(*Prefix::parse("2001:db8:1::/48"));
    CHECK(t.type == TS_IPV6_ADDR_RANGE);
    CHECK(t.start.str() == "2001:db8:1::");
    CHECK(t.end.str() == "2001:db8:1:ffff:ffff:ffff:ffff:ffff");
    auto all = TrafficSelector::from_prefix(*Prefix::parse("0.0.0.0/0"));
    CHECK(all.end.str() == "255.255.255.255");
    auto host = TrafficSelector::from_prefix(*Prefix::parse("192.0.2.7/32"));
    CHECK(host.start == host.end);
    CHECK(host.start_port == 0);
    CHECK(host.end_port == 0xffff);
}

TEST_CASE("ike: malformed payload bodies are INVALID_SYNTAX", "[ike]") {
    struct Case {
        const char* name;
        uint8_t type;
        const char* body;
    } cases[] = {
        // SA (§3.3)
        {"SA empty", PT_SA, ""},
        {"SA proposal length 7", PT_SA, "00000007 01010000"},
        {"SA proposal length past end", PT_SA, "00000010 01010000"},
        {"SA says more proposals, none follow", PT_SA, "02000008 01010000"},
        {"SA last-substruc 1", PT_SA, "01000008 01010000"},
        {"SA octets after last proposal", PT_SA, "00000008 01010000 00"},
        {"SA transform count too high", PT_SA, "00000010 01010002 00000008 02000005"},
        {"SA transform count too low", PT_SA, "00000018 01010001 03000008 02000005 00000008 04000013"},
        {"SA transform says last but isn't", PT_SA, "00000018 01010002 00000008 02000005 00000008 04000013"},
        {"SA transform says more but is last", PT_SA, "00000010 01010001 03000008 02000005"},
        {"SA transform length 7", PT_SA, "0000000f 01010001 00000007 020000"},
        {"SA SPI past the proposal", PT_SA, "00000009 01030401 00"},
        {"SA TLV attribute past transform", PT_SA, "00000014 01010001 0000000c 01000014 000e0004"},
        {"SA truncated attribute", PT_SA, "00000012 01010001 0000000a 01000014 800e"},
        {"SA key length as TLV", PT_SA, "00000016 01010001 0000000e 01000014 000e0002 0100"},
        {"SA key length twice", PT_SA, "00000018 01010001 00000010 01000014 800e0100 800e0080"},
        {"SA key length zero", PT_SA, "00000014 01010001 0000000c 01000014 800e0000"},
        // KE, ID, AUTH, CERT
        {"KE 3 octets", PT_KE, "001f00"},
        {"IDi 3 octets", PT_IDI, "020000"},
        {"AUTH 2 octets", PT_AUTH, "0e00"},
        {"CERT empty", PT_CERT, ""},
        // Nonce (§3.9: 16..256)
        {"Nonce 15 octets", PT_NONCE, "000102030405060708090a0b0c0d0e"},
        // Notify, Delete
        {"Notify 3 octets", PT_NOTIFY, "000040"},
        {"Notify SPI past end", PT_NOTIFY, "0304400900"},
        {"Delete IKE with SPI size 8", PT_DELETE, "01080001 0102030405060708"},
        {"Delete IKE with count 1", PT_DELETE, "01000001"},
        {"Delete ESP SPI size 8", PT_DELETE, "03080001 0102030405060708"},
        {"Delete ESP count too high", PT_DELETE, "03040002 01020304"},
        {"Delete ESP count too low", PT_DELETE, "03040001 01020304 05060708"},
        {"Delete unknown protocol", PT_DELETE, "07040000"},
        // TS (§3.13)
        {"TS header only 3", PT_TSI, "010000"},
        {"TS count too high", PT_TSI, "02000000 07000010 0000ffff 0a000000 0affffff"},
        {"TS trailing octets", PT_TSI, "01000000 07000010 0000ffff 0a000000 0affffff 00"},
        {"TS v4 selector length 40", PT_TSI, "01000000 07000028 0000ffff 0a000000 0affffff"},
        {"TS v6 selector length 16", PT_TSR, "01000000 08000010 0000ffff 0a000000 0affffff"},
        {"TS unknown type", PT_TSI, "01000000 09000010 0000ffff 0a000000 0affffff"},
        {"TS truncated address", PT_TSI, "01000000 07000010 0000ffff 0a000000 0aff"},
        // CP
        {"CP attribute past end", PT_CP, "01000000 00010004 0a00"},
        {"CP truncated attribute header", PT_CP, "01000000 0001"},
        // SKF (RFC 7383 §2.5)
        {"SKF fragment 0", PT_SKF, "00000002 00"},
        {"SKF number > total", PT_SKF, "00030002 00"},
        {"SKF total 0", PT_SKF, "00010000 00"},
        {"SKF 3 octets", PT_SKF, "000100"},
    };
    for (auto& c : cases) {
        INFO(c.name);
        std::string hex = c.body;
        auto e = parse_body(c.type, H(hex));
        CHECK(e.code == ParseCode::BadBody);
        CHECK(e.payload == c.type);
        CHECK(e.notify() == N_INVALID_SYNTAX);
    }
    // Sanity: the boundaries themselves are accepted.
    CHECK(parse_body(PT_NONCE, std::vector<uint8_t>(16, 1)).ok());
    CHECK(parse_body(PT_NONCE, std::vector<uint8_t>(256, 1)).ok());
    CHECK(parse_body(PT_NONCE, std::vector<uint8_t>(257, 1)).code == ParseCode::BadBody);
    CHECK(parse_body(PT_SA, H("00000008 01010000")).ok());
    CHECK(parse_body(PT_TSI, H("00000000")).ok());
    CHECK(parse_body(PT_SKF, H("00020002")).ok());
}

TEST_CASE("ike: transforms keep attributes they do not interpret", "[ike]") {
    // ENCR 20 with Key Length 128 and an unknown TV attribute 99 = 7.
    auto wire = H("00000020 00000018 01010001 00000010 01000014 800e0080 80630007");
    // fix generic length: 4 + 0x18 = 0x1c
    wire[3] = 0x1c;
    wire.resize(0x1c);
    auto p = reparse(wire, PT_SA);
    auto& t = p.as<SaPayload>()->proposals.at(0).transforms.at(0);
    CHECK(t.key_bits == 128);
    REQUIRE(t.other.size() == 1);
    CHECK(t.other[0].type == 99);
    CHECK(t.other[0].tv);
    CHECK(t.other[0].value == 7);
    CHECK(serialise(p) == wire);
}

TEST_CASE("ike: serialisation refuses counts that do not fit their fields", "[ike]") {
    ByteWriter w;
    std::vector<TrafficSelector> many(256, TrafficSelector::from_prefix(*Prefix::parse("10.0.0.0/8")));
    std::vector<Payload> v{make_ts(true, many)};
    CHECK_FALSE(write_chain(w, v));
    ByteWriter w2;
    std::vector<Payload> big{make_vendor(std::vector<uint8_t>(65532, 0))};
    CHECK_FALSE(write_chain(w2, big));
    ByteWriter w3;
    std::vector<Payload> fits{make_vendor(std::vector<uint8_t>(65531, 0))};
    CHECK(write_chain(w3, fits));
    CHECK(w3.size() == 65535);
    // SK must be last.
    ByteWriter w4;
    std::vector<Payload> sk_first{Payload{PT_SK, false, SkPayload{PT_NONE, {1}, 0}}, make_vendor({1})};
    CHECK_FALSE(write_chain(w4, sk_first));
}

TEST_CASE("ike: ID body is what prf(SK_p, ...) covers (§2.15)", "[ike]") {
    IdPayload id{ID_FQDN, {'a', 'b'}};
    CHECK(to_hex(id.body()) == "020000006162");
}
