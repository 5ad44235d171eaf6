#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <chrono>
#include <set>
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

namespace {

// A table of `n` static tunnels whose generation can be bumped between
// slices, as a config apply would, and of IKE tunnels by id; slices of `per`
// rows: the static ones by position, then the IKE ones by id (keyset), as
// Tunnels::slice cuts them.
struct FakeTable {
    size_t n = 0, per = 1;
    std::set<uint64_t> ike;  // IKE tunnel ids (from 1)
    bool dynamic = true;     // an IKE engine is there (its slices follow the static ones)
    uint64_t gen = 1;
    int calls = 0;
    std::function<void(int call)> on_call;  // before each slice
    RowSlice slice(const SliceCursor& from) {
        if (on_call) on_call(calls);
        calls++;
        RowSlice s;
        s.ran = true;
        s.gen = gen;
        if (!from.ike) {
            size_t end = std::min(n, from.pos + per);
            for (size_t i = from.pos; i < end; i++) {
                TunnelRow r;
                r.kind = "static";
                r.id = i;
                r.site = fmt::format("g{}-s{}", gen, i);
                s.rows.push_back(r);
            }
            s.next = end < n ? SliceCursor{end} : SliceCursor{end, true, 0};
            s.last = end == n && !dynamic;
            return s;
        }
        for (auto it = ike.upper_bound(from.after); it != ike.end() && s.rows.size() < per; ++it) {
            TunnelRow r;
            r.kind = "ike";
            r.id = *it;
            s.rows.push_back(r);
        }
        s.last = s.rows.size() < per;
        s.next = s.rows.empty() ? from : SliceCursor{from.pos, true, s.rows.back().id};
        return s;
    }
};

FakeTable table(size_t n, size_t per, size_t ike) {
    FakeTable t;
    t.n = n;
    t.per = per;
    for (uint64_t i = 1; i <= ike; i++) t.ike.insert(i);
    return t;
}

struct Collected {
    std::vector<TunnelRow> rows;
    int resets = 0;
    std::string err;
};

Collected collect(FakeTable& t, int attempts = 5) {
    Collected c;
    c.err = collect_slices([&](const SliceCursor& from) { return t.slice(from); },
                           [&](RowSlice& s) { c.rows.insert(c.rows.end(), s.rows.begin(), s.rows.end()); },
                           [&] {
                               c.rows.clear();
                               c.resets++;
                           },
                           attempts);
    return c;
}

}  // namespace

TEST_CASE("listing in slices: every row once, in order, static then IKE") {
    FakeTable t = table(2500, 1000, 3);
    Collected c = collect(t);
    REQUIRE(c.err.empty());
    CHECK(t.calls == 4);  // three static slices, one IKE slice
    CHECK(c.resets == 0);
    REQUIRE(c.rows.size() == 2503);
    for (size_t i = 0; i < 2500; i++) {
        REQUIRE(c.rows[i].kind == "static");
        REQUIRE(c.rows[i].id == i);
    }
    CHECK(c.rows[2500].kind == "ike");
    CHECK(c.rows[2502].id == 3);

    FakeTable none = table(0, 1000, 0);  // no tunnels, no IKE: one slice, empty, last
    none.dynamic = false;
    Collected e = collect(none);
    CHECK(e.err.empty());
    CHECK(none.calls == 1);
    CHECK(e.rows.empty());

    FakeTable ike_only = table(0, 1000, 0);  // no tunnels: an empty static slice, an empty IKE one
    Collected e2 = collect(ike_only);
    CHECK(e2.err.empty());
    CHECK(ike_only.calls == 2);
    CHECK(e2.rows.empty());
}

TEST_CASE("listing in slices: IKE tunnels by id, undisturbed by tunnels that come and go") {
    FakeTable t = table(0, 10, 35);
    // Before the third slice (IKE ids 21..): a tunnel already listed goes,
    // one not yet listed goes, and a new one comes.
    t.on_call = [&](int call) {
        if (call == 2) {
            t.ike.erase(5);
            t.ike.erase(25);
            t.ike.insert(100);
        }
    };
    Collected c = collect(t);
    REQUIRE(c.err.empty());
    CHECK(c.resets == 0);
    std::vector<uint64_t> ids;
    for (auto& r : c.rows) ids.push_back(r.id);
    std::vector<uint64_t> want;
    for (uint64_t i = 1; i <= 35; i++)
        if (i != 25) want.push_back(i);
    want.push_back(100);
    CHECK(ids == want);
    CHECK(t.calls == 5);  // the empty static slice, then 10, 10, 10 and 6 IKE rows
}

TEST_CASE("listing in slices: a change between slices starts the listing over") {
    FakeTable t = table(30, 10, 0);
    // An apply lands between the first and the second slice, and removes a
    // tunnel: positions shift, so the rows gathered so far are dropped.
    t.on_call = [&](int call) {
        if (call == 1) {
            t.gen++;
            t.n = 29;
        }
    };
    Collected c = collect(t);
    REQUIRE(c.err.empty());
    CHECK(c.resets == 1);
    REQUIRE(c.rows.size() == 29);
    for (auto& r : c.rows) CHECK(r.site.rfind("g2-", 0) == 0);  // all from the new table
}

TEST_CASE("listing in slices: errors") {
    SECTION("the table changes on every slice: gives up after the attempts") {
        FakeTable t = table(30, 10, 0);
        t.on_call = [&](int) { t.gen++; };
        Collected c = collect(t, 3);
        CHECK(c.err == "% the tunnels kept changing during the listing; try again");
        CHECK(c.resets == 2);
    }
    SECTION("the control thread does not run a slice") {
        Collected c;
        c.err = collect_slices([](const SliceCursor&) { return RowSlice{}; },
                               [](RowSlice&) { FAIL("no rows expected"); },
                               [] {});
        CHECK(c.err == "% nimbusd did not answer (stopping?)");
    }
    SECTION("a slice that does not move on") {
        int calls = 0;
        std::string err = collect_slices(
            [&](const SliceCursor& from) {
                calls++;
                RowSlice s;
                s.ran = true;
                s.next = from;
                return s;
            },
            [](RowSlice&) {}, [] {});
        CHECK(err == "% listing made no progress");
        CHECK(calls == 1);
    }
}
