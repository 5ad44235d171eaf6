#include "control/ike/secret.h"

#include <cstdlib>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "src/common/log.h"

namespace nimbus::ike {

bool ct_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool Secret::operator==(const Secret& o) const { return ct_equal(span(), o.span()); }

void crypto_fatal(const char* what) {
    unsigned long e = ERR_peek_last_error();
    char buf[256] = {};
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    LOG_ERROR("ike", "event=crypto-fatal what=\"{}\" openssl=\"{}\"", what, buf);
    std::abort();
}

}  // namespace nimbus::ike
