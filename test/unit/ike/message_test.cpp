#include <catch2/catch.hpp>

#include "control/ike/message.h"

using namespace nimbus;
using namespace nimbus::ike;

namespace {

// IKE header with the given next payload and a body; Length is set right
// unless `length` overrides it.
std::vector<uint8_t> msg(uint8_t next, const std::vector<uint8_t>& body, int64_t length = -1) {
    Header h;
    h.spi_i = 0x0102030405060708ull;
    h.spi_r = 0;
    h.next_payload = next;
    h.exchange = IKE_SA_INIT;
    h.flags = kFlagInitiator;
    h.length = length < 0 ? uint32_t(kHeaderLen + body.size()) : uint32_t(length);
    ByteWriter w;
    h.write(w);
    w.bytes(body);
    return w.take();
}

// A generic payload: next, flags, length (computed unless given), body.
std::vector<uint8_t> gp(uint8_t next, uint8_t flags, const std::vector<uint8_t>& body, int len = -1) {
    ByteWriter w;
    w.u8(next);
    w.u8(flags);
    w.u16(uint16_t(len < 0 ? int(4 + body.size()) : len));
    w.bytes(body);
    return w.take();
}

std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
    std::vector<uint8_t> o;
    for (auto& p : parts) o.insert(o.end(), p.begin(), p.end());
    return o;
}

}  // namespace

TEST_CASE("ike: header writes and reads the RFC 7296 §3.1 layout", "[ike]") {
    Header h;
    h.spi_i = 0xc0c1c2c3c4c5c6c7ull;
    h.spi_r = 0xd0d1d2d3d4d5d6d7ull;
    h.next_payload = PT_SK;
    h.exchange = INFORMATIONAL;
    h.flags = kFlagInitiator | kFlagResponse;
    h.message_id = 9;
    h.length = 0x45;
    ByteWriter w;
    h.write(w);
    CHECK(to_hex(w.data()) == "c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d72e20252800000009" "00000045");
    ByteReader r(w.data());
    Header back = Header::read(r);
    CHECK(r.ok());
    CHECK(back == h);
    CHECK(back.initiator());
    CHECK(back.response());
    CHECK(back.major_version() == 2);
}

TEST_CASE("ike: header checks: size, major version, length field", "[ike]") {
    Header h;
    auto good = msg(PT_NONE, {});
    CHECK(parse_header(good, h).ok());

    struct Case {
        const char* name;
        std::vector<uint8_t> data;
        ParseCode code;
        uint16_t notify;
    } cases[] = {
        {"27 octets", std::vector<uint8_t>(good.begin(), good.end() - 1), ParseCode::Truncated, N_INVALID_SYNTAX},
        {"empty", {}, ParseCode::Truncated, N_INVALID_SYNTAX},
        {"length says more", msg(PT_NONE, {}, 29), ParseCode::LengthMismatch, N_INVALID_SYNTAX},
        {"length says less", msg(PT_NONE, {0, 0, 0, 0}, 28), ParseCode::LengthMismatch, N_INVALID_SYNTAX},
        {"length 2^32-1", msg(PT_NONE, {}, 0xffffffffll), ParseCode::LengthMismatch, N_INVALID_SYNTAX},
    };
    for (auto& c : cases) {
        INFO(c.name);
        auto e = parse_header(c.data, h);
        CHECK(e.code == c.code);
        CHECK(e.notify() == c.notify);
    }

    // §1.5: major version 3 → INVALID_MAJOR_VERSION; a minor version is ignored.
    auto v3 = good;
    v3[17] = 0x30;
    auto e = parse_header(v3, h);
    CHECK(e.code == ParseCode::BadVersion);
    CHECK(e.notify() == N_INVALID_MAJOR_VERSION);
    auto minor = good;
    minor[17] = 0x21;
    CHECK(parse_header(minor, h).ok());
}

TEST_CASE("ike: payload chain walks next-payload links and records offsets", "[ike]") {
    // Nonce(16) -> Vendor(3) -> end
    std::vector<uint8_t> nonce(16, 0xaa);
    auto body = cat({gp(PT_VENDOR, 0, nonce), gp(PT_NONE, 0, {1, 2, 3})});
    std::vector<RawPayload> out;
    auto e = walk_chain(body, PT_NONCE, kHeaderLen, false, out);
    REQUIRE(e.ok());
    REQUIRE(out.size() == 2);
    CHECK(out[0].type == PT_NONCE);
    CHECK(out[0].offset == 28);
    CHECK(out[0].body.size() == 16);
    CHECK(out[1].type == PT_VENDOR);
    CHECK(out[1].offset == 28 + 20);
    CHECK(to_hex(out[1].body) == "010203");
}

TEST_CASE("ike: malformed chains are refused with the right code", "[ike]") {
    struct Case {
        const char* name;
        uint8_t first;
        std::vector<uint8_t> body;
        bool inner;
        ParseCode code;
        uint8_t payload;
    } cases[] = {
        {"truncated generic header", PT_NONCE, {0, 0, 0}, false, ParseCode::Truncated, PT_NONCE},
        {"first payload missing", PT_NONCE, {}, false, ParseCode::Truncated, PT_NONCE},
        {"payload length 3", PT_VENDOR, gp(PT_NONE, 0, {}, 3), false, ParseCode::BadPayloadLength, PT_VENDOR},
        {"payload length 0", PT_VENDOR, gp(PT_NONE, 0, {}, 0), false, ParseCode::BadPayloadLength, PT_VENDOR},
        {"payload length past the end", PT_VENDOR, gp(PT_NONE, 0, {1, 2}, 7), false, ParseCode::BadPayloadLength,
         PT_VENDOR},
        {"length overflow 0xffff", PT_VENDOR, gp(PT_NONE, 0, {1, 2}, 0xffff), false, ParseCode::BadPayloadLength,
         PT_VENDOR},
        {"next payload promised but missing", PT_VENDOR, gp(PT_NOTIFY, 0, {1}), false, ParseCode::Truncated,
         PT_NOTIFY},
        {"trailing octets after last payload", PT_VENDOR, cat({gp(PT_NONE, 0, {1}), {0, 0}}), false,
         ParseCode::TrailingData, PT_NONE},
        {"unknown critical payload", 200, gp(PT_NONE, kCriticalBit, {1, 2, 3}), false,
         ParseCode::UnsupportedCritical, 200},
        {"unknown critical after a known one", PT_VENDOR, cat({gp(201, 0, {9}), gp(PT_NONE, 0xff, {})}), false,
         ParseCode::UnsupportedCritical, 201},
        {"SK not last", PT_SK, cat({gp(PT_NONCE, 0, std::vector<uint8_t>(30, 1)), gp(PT_NONE, 0, {})}), false,
         ParseCode::SkNotLast, PT_SK},
        {"SK inside SK", PT_SK, gp(PT_NONE, 0, std::vector<uint8_t>(30, 1)), true, ParseCode::NestedSk, PT_SK},
        {"SKF inside SK", PT_SKF, gp(PT_NONE, 0, std::vector<uint8_t>(30, 1)), true, ParseCode::NestedSk, PT_SKF},
    };
    for (auto& c : cases) {
        INFO(c.name);
        std::vector<RawPayload> out;
        auto e = walk_chain(c.body, c.first, kHeaderLen, c.inner, out);
        CHECK(e.code == c.code);
        CHECK(e.payload == c.payload);
        CHECK_FALSE(e.ok());
        CHECK_FALSE(e.str().empty());
    }
}

TEST_CASE("ike: unknown critical payload maps to UNSUPPORTED_CRITICAL_PAYLOAD (§2.5)", "[ike]") {
    std::vector<RawPayload> out;
    auto e = walk_chain(gp(PT_NONE, kCriticalBit, {}), 99, 0, false, out);
    CHECK(e.code == ParseCode::UnsupportedCritical);
    CHECK(e.notify() == N_UNSUPPORTED_CRITICAL_PAYLOAD);
    CHECK(e.payload == 99);
}

TEST_CASE("ike: unknown non-critical payloads are kept and skipped; known ones ignore the C bit", "[ike]") {
    auto body = cat({gp(PT_NONCE, 0, {7, 7}), gp(PT_VENDOR, kCriticalBit, std::vector<uint8_t>(16, 1)),
                     gp(PT_NONE, 0, {})});
    std::vector<RawPayload> out;
    auto e = walk_chain(body, 222, 0, false, out);
    REQUIRE(e.ok());
    REQUIRE(out.size() == 3);
    CHECK(out[0].type == 222);
    CHECK_FALSE(out[0].critical);
    CHECK(out[1].type == PT_NONCE);
    CHECK(out[1].critical);   // §2.5: ignored for types we know
    CHECK(out[2].type == PT_VENDOR);
}

TEST_CASE("ike: SK ends the outer chain and must reach the end", "[ike]") {
    auto body = cat({gp(PT_SK, 0, std::vector<uint8_t>(16, 1)), gp(PT_IDI, 0, std::vector<uint8_t>(40, 2))});
    std::vector<RawPayload> out;
    auto e = walk_chain(body, PT_NONCE, 28, false, out);
    REQUIRE(e.ok());
    REQUIRE(out.size() == 2);
    CHECK(out[1].type == PT_SK);
    CHECK(out[1].next == PT_IDI);   // the first inner payload
    CHECK(out[1].offset == 28 + 20);
}

TEST_CASE("ike: chain length is bounded", "[ike]") {
    ByteWriter w;
    for (size_t i = 0; i < kMaxPayloads + 1; i++) {
        w.u8(i + 1 == kMaxPayloads + 1 ? PT_NONE : PT_VENDOR);
        w.u8(0);
        w.u16(4);
    }
    std::vector<RawPayload> out;
    auto e = walk_chain(w.data(), PT_VENDOR, 0, false, out);
    CHECK(e.code == ParseCode::TooManyPayloads);

    std::vector<uint8_t> ok_chain(w.data().begin(), w.data().begin() + 4 * kMaxPayloads);
    ok_chain[4 * (kMaxPayloads - 1)] = PT_NONE;
    out.clear();
    CHECK(walk_chain(ok_chain, PT_VENDOR, 0, false, out).ok());
    CHECK(out.size() == kMaxPayloads);
}

TEST_CASE("ike: generic header writer patches the length", "[ike]") {
    ByteWriter w;
    size_t at = write_generic_header(w, PT_NOTIFY, false);
    w.bytes(std::vector<uint8_t>{1, 2, 3});
    REQUIRE(patch_length(w, at));
    CHECK(to_hex(w.data()) == "29000007010203");
    ByteWriter big;
    at = write_generic_header(big, PT_NONE, true);
    big.zeros(70000);
    CHECK_FALSE(patch_length(big, at));
    CHECK(big.data()[1] == kCriticalBit);
}
