#include "src/common/bytes.h"

#include <openssl/crypto.h>

namespace nimbus {

std::string to_hex(std::span<const uint8_t> s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() * 2);
    for (auto c : s) {
        out.push_back(d[c >> 4]);
        out.push_back(d[c & 15]);
    }
    return out;
}

std::vector<uint8_t> from_hex(std::string_view s) {
    std::vector<uint8_t> out;
    int hi = -1;
    for (char c : s) {
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else if (c == ' ' || c == '\n' || c == '\t' || c == ':')
            continue;
        else
            return {};
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(uint8_t(hi << 4 | v));
            hi = -1;
        }
    }
    if (hi >= 0) return {};
    return out;
}

void wipe(void* p, size_t n) { OPENSSL_cleanse(p, n); }

}  // namespace nimbus
