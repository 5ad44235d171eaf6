// Bounded byte reader and growable writer for wire formats (IKE, ZAPI, FPM,
// VRRP, netlink). The reader never trusts a length from the wire: every read
// is bounds-checked and a failed read poisons the reader (fail closed), so a
// parser can read a whole structure and check ok() once at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nimbus {

class ByteReader {
public:
    ByteReader() = default;
    ByteReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
    explicit ByteReader(std::span<const uint8_t> s) : p_(s.data()), n_(s.size()) {}

    bool ok() const { return ok_; }
    size_t remaining() const { return ok_ ? n_ - off_ : 0; }
    size_t offset() const { return off_; }
    bool empty() const { return remaining() == 0; }
    const uint8_t* cursor() const { return p_ + off_; }

    uint8_t u8() {
        uint8_t v = 0;
        if (need(1)) v = p_[off_++];
        return v;
    }
    uint16_t u16() {  // big endian (network order)
        uint16_t v = 0;
        if (need(2)) {
            v = uint16_t(p_[off_] << 8 | p_[off_ + 1]);
            off_ += 2;
        }
        return v;
    }
    uint32_t u32() {
        uint32_t v = 0;
        if (need(4)) {
            v = uint32_t(p_[off_]) << 24 | uint32_t(p_[off_ + 1]) << 16 |
                uint32_t(p_[off_ + 2]) << 8 | p_[off_ + 3];
            off_ += 4;
        }
        return v;
    }
    uint64_t u64() {
        uint64_t hi = u32();
        return hi << 32 | u32();
    }
    // Host-order (little-endian on x86) reads, for netlink.
    uint16_t u16_host() {
        uint16_t v = 0;
        if (need(2)) {
            std::memcpy(&v, p_ + off_, 2);
            off_ += 2;
        }
        return v;
    }
    uint32_t u32_host() {
        uint32_t v = 0;
        if (need(4)) {
            std::memcpy(&v, p_ + off_, 4);
            off_ += 4;
        }
        return v;
    }
    bool bytes(void* out, size_t n) {
        if (!need(n)) return false;
        std::memcpy(out, p_ + off_, n);
        off_ += n;
        return true;
    }
    // A sub-reader over the next n bytes; the parent skips them.
    ByteReader sub(size_t n) {
        if (!need(n)) return ByteReader::failed();
        ByteReader r(p_ + off_, n);
        off_ += n;
        return r;
    }
    std::span<const uint8_t> span(size_t n) {
        if (!need(n)) return {};
        std::span<const uint8_t> s(p_ + off_, n);
        off_ += n;
        return s;
    }
    std::span<const uint8_t> rest() { return span(remaining()); }
    bool skip(size_t n) {
        if (!need(n)) return false;
        off_ += n;
        return true;
    }
    void fail() { ok_ = false; }

    static ByteReader failed() {
        ByteReader r;
        r.ok_ = false;
        return r;
    }

private:
    bool need(size_t n) {
        if (!ok_ || n > n_ - off_) {
            ok_ = false;
            return false;
        }
        return true;
    }
    const uint8_t* p_ = nullptr;
    size_t n_ = 0;
    size_t off_ = 0;
    bool ok_ = true;
};

class ByteWriter {
public:
    void u8(uint8_t v) { buf_.push_back(v); }
    void u16(uint16_t v) {
        buf_.push_back(uint8_t(v >> 8));
        buf_.push_back(uint8_t(v));
    }
    void u32(uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) buf_.push_back(uint8_t(v >> s));
    }
    void u64(uint64_t v) {
        u32(uint32_t(v >> 32));
        u32(uint32_t(v));
    }
    void u16_host(uint16_t v) { bytes(&v, 2); }
    void u32_host(uint32_t v) { bytes(&v, 4); }
    void bytes(const void* p, size_t n) {
        auto* b = static_cast<const uint8_t*>(p);
        buf_.insert(buf_.end(), b, b + n);
    }
    void bytes(std::span<const uint8_t> s) { bytes(s.data(), s.size()); }
    void zeros(size_t n) { buf_.insert(buf_.end(), n, 0); }
    // Reserve a big-endian length field to patch once the body is written.
    size_t mark() const { return buf_.size(); }
    void put_u16_at(size_t at, uint16_t v) {
        buf_[at] = uint8_t(v >> 8);
        buf_[at + 1] = uint8_t(v);
    }
    void put_u32_at(size_t at, uint32_t v) {
        for (int i = 0; i < 4; i++) buf_[at + i] = uint8_t(v >> (24 - 8 * i));
    }
    size_t size() const { return buf_.size(); }
    const std::vector<uint8_t>& data() const { return buf_; }
    std::vector<uint8_t>& data() { return buf_; }
    std::vector<uint8_t> take() { return std::move(buf_); }

private:
    std::vector<uint8_t> buf_;
};

std::string to_hex(std::span<const uint8_t> s);
// Parses hex, ignoring spaces and newlines; returns empty on bad input.
std::vector<uint8_t> from_hex(std::string_view s);

// Overwrite memory that held a secret, in a way the compiler cannot elide.
void wipe(void* p, size_t n);

}  // namespace nimbus
