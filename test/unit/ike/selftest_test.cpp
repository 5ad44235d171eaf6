#include <catch2/catch.hpp>

#include "control/ike/selftest.h"

using namespace nimbus::ike;

TEST_CASE("ike: start-up self-test passes", "[ike]") {
    std::string failed;
    CHECK(self_test(&failed));
    CHECK(failed.empty());
}
