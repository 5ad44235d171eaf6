#include <catch2/catch.hpp>

#include "control/mgmt/commands.h"

using namespace nimbus::mgmt;

namespace {

Registry make() {
    Registry r;
    auto echo = [](const char* id) {
        return [id](const Args& a) {
            std::string s = id;
            for (auto& [k, v] : a.vars) s += " " + k + "=" + v;
            return Result{0, s, nullptr};
        };
    };
    r.add("show interfaces [NAME]", "ports", echo("ifs"));
    r.add("show ip route [vrf NAME]", "v4 routes", echo("v4"));
    r.add("show ipv6 route [vrf NAME]", "v6 routes", echo("v6"));
    r.add("show ipsec sa [SPI]", "SAs", echo("sa"));
    r.add("clear counters", "zero", echo("clear"));
    return r;
}

}  // namespace

TEST_CASE("commands match literally, with placeholders and optional groups") {
    Registry r = make();
    struct Case {
        std::vector<std::string> words;
        int status;
        std::string text;
    };
    const Case cases[] = {
        {{"show", "interfaces"}, 0, "ifs"},
        {{"show", "interfaces", "lan0"}, 0, "ifs NAME=lan0"},
        {{"show", "ip", "route"}, 0, "v4"},
        {{"show", "ip", "route", "vrf", "corp"}, 0, "v4 NAME=corp"},
        {{"show", "ipv6", "route", "vrf", "x"}, 0, "v6 NAME=x"},
        {{"sh", "ip", "ro"}, 0, "v4"},                        // unique abbreviations
        {{"sh", "int", "wan0"}, 0, "ifs NAME=wan0"},
        {{"cl", "co"}, 0, "clear"},
        {{"show", "ip", "route", "vrf"}, 1, "% Unknown command: show ip route vrf (try 'help')"},
        {{"show", "ip", "route", "extra"}, 1, "% Unknown command: show ip route extra (try 'help')"},
        {{"show", "bogus"}, 1, "% Unknown command: show bogus (try 'help')"},
        // "route" typed in full beats "route" as an interface NAME; "i" stays ambiguous.
        {{"sh", "i", "route"}, 1,
         "% Ambiguous command; it could be:\n  show ip route [vrf NAME]\n  show ipv6 route [vrf NAME]"},
        {{"show", "ipv", "route"}, 0, "v6"},
        {{}, 1, "% Empty command"},
    };
    for (auto& c : cases) {
        Result res = r.run(c.words, false);
        CHECK(res.status == c.status);
        CHECK(res.text == c.text);
    }
}

TEST_CASE("completion lists what may follow") {
    Registry r = make();
    auto next = r.next_words({"show"});
    std::vector<std::string> words;
    for (auto& [w, h] : next) words.push_back(w);
    CHECK(words == std::vector<std::string>{"interfaces", "ip", "ipsec", "ipv6"});
    r.values("NAME", [] { return std::vector<std::string>{"lan0", "wan0"}; });
    auto ifs = r.next_words({"show", "interfaces"});
    std::vector<std::string> w1;
    for (auto& [w, h] : ifs) w1.push_back(w);
    CHECK(w1 == std::vector<std::string>{"<cr>", "NAME", "lan0", "wan0"});
    auto after = r.next_words({"show", "ip", "route"});
    std::vector<std::string> w2;
    for (auto& [w, h] : after) w2.push_back(w);
    CHECK(w2 == std::vector<std::string>{"<cr>", "vrf"});
}
