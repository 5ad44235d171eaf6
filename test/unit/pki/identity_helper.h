// Test helper shared by the pki unit tests: an identity from its text form,
// failing the test case (with the parser's message) if it does not parse.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "control/pki/identity.h"

namespace nimbus::pki::test {

inline Identity id(const char* s) {
    std::string err;
    auto i = parse_identity(s, &err);
    INFO(err);
    REQUIRE(i);
    return *i;
}

}  // namespace nimbus::pki::test
