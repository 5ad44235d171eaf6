#include <catch2/catch.hpp>
#include "control/config/config.h"
TEST_CASE("minimal config parses") {
    auto r = nimbus::config::parse("node: { name: a }\n", "t.yaml");
    CHECK(r.ok());
}
