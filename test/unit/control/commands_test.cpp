#include <catch2/catch.hpp>

#include "control/loop/loop.h"
#include "control/mgmt/cli_server.h"
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

TEST_CASE("deferred output: built by the sender, filters still apply; the loop counts slow callbacks") {
    // A listing whose text and data are built later (on the reply's writer
    // thread in nimbusd) from what the handler captured.
    Registry r;
    r.add("show many", "a big listing", [](const Args& a) {
        auto rows = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"alpha 1", "beta 2", "alpha 3"});
        Result res{0, "", nullptr};
        if (a.json)
            res.make_data = [rows] { return nlohmann::json(*rows); };
        else
            res.make_text = [rows] {
                std::string s;
                for (auto& x : *rows) s += x + "\n";
                return s;
            };
        return res;
    });
    nimbus::control::Loop loop;
    CliServer cli(loop, r);
    Result t = cli.dispatch({"show", "many", "|", "include", "alpha"}, false);
    CHECK(t.status == 0);
    CHECK(t.deferred());
    CHECK(t.text.empty());  // nothing built yet
    CHECK(t.built_text() == "alpha 1\nalpha 3\n");
    CHECK(!t.deferred());
    Result e = cli.dispatch({"show", "many", "|", "exclude", "alpha", "|", "include", "2"}, false);
    CHECK(e.built_text() == "beta 2\n");
    Result j = cli.dispatch({"show", "many", "|", "json"}, false);
    CHECK(j.json);
    CHECK(j.built_data() == nlohmann::json({"alpha 1", "beta 2", "alpha 3"}));
    // A filter the CLI does not know is refused before the command runs.
    CHECK(cli.dispatch({"show", "many", "|", "sort"}, false).status == 1);

    // Loop statistics: a callback over 50 ms is counted as slow.
    int fired = 0;
    loop.after_ms(0, [&] { fired++; });
    loop.after_ms(1, [&] {
        fired++;
        uint64_t until = nimbus::control::Loop::now() + 60'000'000;  // hold the thread 60 ms
        while (nimbus::control::Loop::now() < until) {
        }
    });
    loop.after_ms(2, [&] { loop.stop(); });
    loop.run();
    CHECK(fired == 2);
    const auto& st = loop.stats();
    CHECK(st.callbacks == 3);
    CHECK(st.slow == 1);
    CHECK(st.max_ns >= 60'000'000);
}
