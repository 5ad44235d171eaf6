#include <catch2/catch.hpp>

#include "src/common/bytes.h"

using namespace nimbus;

TEST_CASE("ByteReader fails closed on a short buffer and stays failed") {
    const uint8_t b[] = {0x12, 0x34, 0x56};
    ByteReader r(b, sizeof b);
    CHECK(r.u16() == 0x1234);
    CHECK(r.ok());
    CHECK(r.u16() == 0);  // only one byte left
    CHECK_FALSE(r.ok());
    CHECK(r.u8() == 0);   // poisoned: later reads return zero, not 0x56
    CHECK(r.remaining() == 0);
}

TEST_CASE("ByteReader sub-readers bound nested lengths") {
    const uint8_t b[] = {0, 0, 0, 1, 0xaa, 0xbb, 0xcc};
    ByteReader r(b, sizeof b);
    CHECK(r.u32() == 1);
    auto s = r.sub(2);
    CHECK(s.u16() == 0xaabb);
    CHECK(s.empty());
    CHECK(r.u8() == 0xcc);
    CHECK(r.ok());
    auto bad = r.sub(1);
    CHECK_FALSE(bad.ok());
    CHECK_FALSE(r.ok());
}

TEST_CASE("ByteWriter writes big endian and patches lengths") {
    ByteWriter w;
    w.u8(1);
    size_t at = w.mark();
    w.u16(0);
    w.u32(0xdeadbeef);
    w.u64(0x0102030405060708ull);
    w.put_u16_at(at, uint16_t(w.size()));
    CHECK(to_hex(w.data()) == "01000fdeadbeef0102030405060708");
    CHECK(from_hex("01 00 0f de:ad") == std::vector<uint8_t>{1, 0, 0x0f, 0xde, 0xad});
    CHECK(from_hex("abc").empty());
    CHECK(from_hex("zz").empty());
}
