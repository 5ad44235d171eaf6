#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <chrono>
#include <sstream>

#include "control/esp/tunnel_view.h"

using namespace nimbus::esp;

namespace {

std::vector<TunnelRow> make_rows(size_t n) {
    std::vector<TunnelRow> v;
    const char* states[] = {"up", "up", "up", "connecting", "down"};
    for (size_t i = 0; i < n; i++) {
        TunnelRow r;
        r.kind = i % 2 ? "ike" : "static";
        r.id = i + 1;
        r.cloud = i % 3 == 0 ? "corp" : i % 3 == 1 ? "retail" : "iot";
        r.site = i % 7 == 0 ? fmt::format("C=XX, O=lab, CN=store-{:05}", i) : fmt::format("site-{}", i);
        r.state = states[i % 5];
        r.peer = fmt::format("198.51.100.{}", i % 250 + 1);
        r.uptime_s = i * 37;
        if (i % 2) {
            r.rtt_last_ms = double(i % 97) / 10;
            r.rtt_avg_ms = r.rtt_last_ms;
            r.rtt_max_ms = r.rtt_last_ms * 3;
        }
        r.rx_packets = i * 1000003;
        r.tx_packets = i;
        r.drops = i % 11;
        r.flaps = uint32_t(i % 4);
        if (r.flaps) r.last_down = i % 2 ? "dpd" : "peer_delete";
        v.push_back(r);
    }
    return v;
}

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

}  // namespace

TEST_CASE("tunnel filters: cloud, state, site-name prefix (and the CN of a DN)") {
    TunnelRow a;
    a.cloud = "corp";
    a.state = "up";
    a.site = "C=XX, O=lab, CN=store-0001";
    TunnelRow b;
    b.cloud = "retail";
    b.state = "down";
    b.site = "kiosk-17";
    struct Case {
        TunnelFilter f;
        bool a, b;
    };
    const Case cases[] = {
        {{"", "", ""}, true, true},          {{"corp", "", ""}, true, false},
        {{"retail", "", ""}, false, true},   {{"", "up", ""}, true, false},
        {{"", "down", ""}, false, true},     {{"", "connecting", ""}, false, false},
        {{"", "", "store-00"}, true, false}, {{"", "", "C=XX"}, true, false},
        {{"", "", "kiosk"}, false, true},    {{"", "", "kiosk-18"}, false, false},
        {{"corp", "up", "store"}, true, false}, {{"corp", "down", "store"}, false, false},
    };
    for (auto& c : cases) {
        INFO(c.f.cloud << "/" << c.f.state << "/" << c.f.site_prefix);
        CHECK(c.f.match(a) == c.a);
        CHECK(c.f.match(b) == c.b);
    }
    // Static and IKE tunnels number independently: the ID column tells them apart.
    TunnelRow st;
    st.kind = "static";
    st.id = 4;
    TunnelRow ik;
    ik.kind = "ike";
    ik.id = 4;
    CHECK(static_id(st) == "s4");
    CHECK(static_id(ik) == 4);
    CHECK(render_list({&st, &ik}).find("\ns4 ") != std::string::npos);
    CHECK(valid_state("up"));
    CHECK(valid_state("connecting"));
    CHECK_FALSE(valid_state("UP"));
    CHECK_FALSE(valid_state("established"));
}

TEST_CASE("show tunnels at 5,000 tunnels: one line each, every column aligned, fast") {
    auto rows = make_rows(5000);
    std::vector<const TunnelRow*> ptr;
    for (auto& r : rows) ptr.push_back(&r);
    auto t0 = std::chrono::steady_clock::now();
    std::string text = render_list(ptr);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    CHECK(ms < 2000);
    auto ls = lines(text);
    REQUIRE(ls.size() == 5000 + 2);  // header, rows, count line
    CHECK(ls.back() == "5000 tunnels");
    // Column starts from the header: every row has a column boundary (a
    // space before a non-space) exactly there for left-aligned columns,
    // and right-aligned numbers end where their header ends.
    const std::string& h = ls[0];
    size_t site = h.find("Site"), state = h.find("State"), peer = h.find("Peer"), rx_end = h.find("Rx pkts") + 7,
           flaps_end = h.find("Flaps") + 5, last = h.find("Last down");
    REQUIRE(last != std::string::npos);
    for (size_t i = 1; i + 1 < ls.size(); i++) {
        const std::string& l = ls[i];
        INFO(l);
        REQUIRE(l.size() > last);
        CHECK(l[site - 1] == ' ');
        CHECK(l[site] != ' ');
        CHECK(l[state - 1] == ' ');
        CHECK(l[state] != ' ');
        CHECK(l[peer] != ' ');
        CHECK(l[rx_end - 1] != ' ');
        CHECK(l[rx_end] == ' ');
        CHECK(l[flaps_end - 1] != ' ');
        CHECK(l[flaps_end] == ' ');
        CHECK(l[last - 1] == ' ');
        CHECK(l[last] != ' ');
        CHECK(l.find('\t') == std::string::npos);
    }
    // The row of tunnel 1234 has its values where its header says.
    const TunnelRow& r = rows[1233];
    const std::string& l = ls[1234];
    CHECK(l.compare(state, r.state.size(), r.state) == 0);
    CHECK(l.compare(peer, r.peer.size(), r.peer) == 0);
    std::string rx = std::to_string(r.rx_packets);
    CHECK(l.compare(rx_end - rx.size(), rx.size(), rx) == 0);
}

TEST_CASE("summary: counts per cloud and state add up; extras rendered and in JSON") {
    auto rows = make_rows(1000);
    std::vector<const TunnelRow*> ptr;
    for (auto& r : rows) ptr.push_back(&r);
    Summary s = summarize(ptr);
    CHECK(s.tunnels == 1000);
    CHECK(s.total.at("up") == 600);
    CHECK(s.total.at("connecting") == 200);
    CHECK(s.total.at("down") == 200);
    // Naive reference per cloud.
    for (const char* cloud : {"corp", "retail", "iot"})
        for (const char* st : {"up", "connecting", "down"}) {
            uint64_t n = 0;
            for (auto& r : rows) n += r.cloud == cloud && r.state == st;
            CHECK(s.per_cloud.at(cloud).at(st) == n);
        }
    SummaryExtra x;
    x.handshakes_per_s_10s = 12.5;
    x.handshakes_total = 4242;
    x.downs["dpd"] = 3;
    x.downs["clear"] = 0;
    x.dp_drops["auth_fail"] = 7;
    nlohmann::json j;
    std::string text = render_summary(s, x, &j);
    CHECK(text.find("12.5/s over 10 s") != std::string::npos);
    CHECK(text.find("dpd") != std::string::npos);
    CHECK(text.find("clear") == std::string::npos);  // zero lines are left out
    CHECK(text.find("auth_fail") != std::string::npos);
    CHECK(j["tunnels"] == 1000);
    CHECK(j["clouds"]["corp"]["up"].get<uint64_t>() == s.per_cloud["corp"]["up"]);
    CHECK(j["states"]["down"] == 200);
    CHECK(j["handshakes_total"] == 4242);
    CHECK(j["downs"]["dpd"] == 3);
    CHECK(j["dataplane_drops"]["auth_fail"] == 7);
    auto ls = lines(text);
    CHECK(ls[0].find("Cloud") == 0);
    CHECK(ls[4].find("total") == 0);
}
