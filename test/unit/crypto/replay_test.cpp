// Anti-replay window: numbered tables of cases at the window's edges, and
// random sequences against a deliberately naive set-based reference.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dataplane/replay/window.h"

using namespace nimbus::replay;

namespace {

// ---- The naive reference: every accepted number in a std::set. ----
//
// ESN inference, restated independently of RFC 4303 A2.2's two cases: the
// full number is the unique value congruent to the received low 32 bits in
// the 2^32-wide span starting at the window's bottom, top - W + 1.
struct NaiveWindow {
    uint64_t w;
    bool esn;
    uint64_t top = 0;
    std::set<uint64_t> seen;

    Verdict classify(uint64_t s) const {
        if (s == 0) return Verdict::Invalid;
        if (s > top) return Verdict::Ok;
        if (top - s >= w) return Verdict::TooOld;
        return seen.count(s) ? Verdict::Duplicate : Verdict::Ok;
    }
    Check check(uint32_t lo) const {
        if (!esn) return {classify(lo), lo};
        __int128 bottom = (__int128)top - (__int128)w + 1;
        __int128 span = (__int128)1 << 32;
        __int128 off = ((__int128)lo - bottom) % span;
        if (off < 0) off += span;
        __int128 s = bottom + off;
        if (s < 0 || s > (__int128)UINT64_MAX) return {Verdict::TooOld, 0};
        return {classify(uint64_t(s)), uint64_t(s)};
    }
    Verdict update(uint64_t s) {
        Verdict v = classify(s);
        if (v == Verdict::Ok) {
            seen.insert(s);
            if (s > top) top = s;
        }
        return v;
    }
};

std::string str(Verdict v) { return name(v); }

// ---- Numbered tables ----

enum class Act { Recv, CheckOnly, UpdateOnly };

struct Row {
    int n;          // case number, for the failure message
    Act act;
    uint64_t in;    // Recv/CheckOnly: the header's 32-bit field; UpdateOnly: full number
    Verdict want;   // Recv/CheckOnly: check(); UpdateOnly: update()
    uint64_t seq;   // Recv/CheckOnly: expected (inferred) full number
    uint64_t top;   // expected top() after the row
};

// Recv = check, then update if check said Ok (as if the ICV verified); the
// update must then say Ok too.
void run_table(Window& w, const std::vector<Row>& rows) {
    for (const Row& r : rows) {
        INFO("size " << w.size() << (w.esn() ? " esn" : "") << " case " << r.n << " in=" << r.in);
        if (r.act == Act::UpdateOnly) {
            CHECK(str(w.update(r.in)) == str(r.want));
        } else {
            Check c = w.check(uint32_t(r.in));
            CHECK(str(c.verdict) == str(r.want));
            if (r.want == Verdict::Ok || r.want == Verdict::Duplicate) CHECK(c.seq == r.seq);
            if (r.act == Act::Recv && c.verdict == Verdict::Ok) CHECK(str(w.update(c.seq)) == "ok");
        }
        CHECK(w.top() == r.top);
    }
}

std::vector<Row> table_32(uint64_t W) {
    using V = Verdict;
    const Act R = Act::Recv, C = Act::CheckOnly, U = Act::UpdateOnly;
    const uint64_t F = 3 * W + 1 + 1000 * W + 17;  // far jump target
    std::vector<Row> t = {
        {1, R, 0, V::Invalid, 0, 0},                 // sequence number 0 is never sent
        {2, R, 1, V::Ok, 1, 1},                      // first packet
        {3, R, 1, V::Duplicate, 1, 1},               // duplicate of the newest
        {4, R, 2, V::Ok, 2, 2},                      // in order
        {5, R, 5, V::Ok, 5, 5},                      // gap: 3, 4 missing
        {6, R, 3, V::Ok, 3, 5},                      // reordered, fills the gap
        {7, R, 3, V::Duplicate, 3, 5},               // duplicate inside the window
        {8, R, W, V::Ok, W, W},                      // window now 1..W
        {9, R, 4, V::Ok, 4, W},                      // late but inside
        {10, R, 1, V::Duplicate, 1, W},              // exactly the left edge, seen
        {11, R, W + 1, V::Ok, W + 1, W + 1},         // window now 2..W+1
        {12, R, 1, V::TooOld, 0, W + 1},             // one left of the edge
        {13, R, 2, V::Duplicate, 2, W + 1},          // the left edge, seen
        {14, R, 6, V::Ok, 6, W + 1},                 // inside, never seen
        {15, R, 2 * W, V::Ok, 2 * W, 2 * W},         // window W+1..2W
        {16, R, W, V::TooOld, 0, 2 * W},             // one left of the edge
        {17, R, W + 1, V::Duplicate, W + 1, 2 * W},  // the left edge, seen
        {18, R, W + 2, V::Ok, W + 2, 2 * W},         // one right of the edge, unseen
        {19, R, 2 * W - 1, V::Ok, 2 * W - 1, 2 * W},
        {20, R, 2 * W, V::Duplicate, 2 * W, 2 * W},
        {21, R, 2 * W + 1, V::Ok, 2 * W + 1, 2 * W + 1},
        {22, R, 3 * W + 1, V::Ok, 3 * W + 1, 3 * W + 1},  // jump by exactly W
        {23, R, 2 * W + 1, V::TooOld, 0, 3 * W + 1},      // the old top just fell out
        {24, R, 2 * W + 2, V::Ok, 2 * W + 2, 3 * W + 1},  // the new left edge
    };
    // 25: reordered by up to W-1, newest first: 3W .. 2W+3 all new.
    for (uint64_t s = 3 * W; s >= 2 * W + 3; s--) t.push_back({25, R, s, V::Ok, s, 3 * W + 1});
    std::vector<Row> more = {
        {26, R, 2 * W + 2, V::Duplicate, 2 * W + 2, 3 * W + 1},
        {27, R, F, V::Ok, F, F},                    // jump far ahead (clears the whole ring)
        {28, R, 3 * W + 1, V::TooOld, 0, F},
        {29, R, F - W + 1, V::Ok, F - W + 1, F},    // left edge after a far jump: unseen
        {30, R, F - W, V::TooOld, 0, F},
        {31, R, F - 1, V::Ok, F - 1, F},
        {32, R, F + 1, V::Ok, F + 1, F + 1},
        {33, C, F + 5, V::Ok, F + 5, F + 1},        // check changes nothing ...
        {34, C, F + 5, V::Ok, F + 5, F + 1},        // ... so it says the same again
        {35, U, F + 5, V::Ok, 0, F + 5},            // two copies in one burst: first update wins
        {36, U, F + 5, V::Duplicate, 0, F + 5},     // second copy
        {37, C, F + 3, V::Ok, F + 3, F + 5},        // passes check, then another packet
        {38, U, F + 3 + W + 10, V::Ok, 0, F + 13 + W},  // jumps the window past it
        {39, U, F + 3, V::TooOld, 0, F + 13 + W},   // so its own update is refused
        {40, U, 0, V::Invalid, 0, F + 13 + W},
        {41, C, F + 20 + W, V::Ok, F + 20 + W, F + 13 + W},  // passes check; then a
        {42, U, F + 20 + 2 * W, V::Ok, 0, F + 20 + 2 * W},   // jump puts it exactly one
        {43, U, F + 20 + W, V::TooOld, 0, F + 20 + 2 * W},   // left of the edge
        {44, U, F + 21 + W, V::Ok, 0, F + 20 + 2 * W},       // the edge itself is still open
        {45, R, 0xfffffffe, V::Ok, 0xfffffffe, 0xfffffffe},  // last numbers without ESN
        {46, R, 0xffffffff, V::Ok, 0xffffffff, 0xffffffff},
        {47, R, 0, V::Invalid, 0, 0xffffffff},      // no wrap without ESN (RFC 4303 §3.3.3)
        {48, R, 0xffffffff - W + 1, V::Ok, 0xffffffff - W + 1, 0xffffffff},
        {49, R, 0xffffffff - W, V::TooOld, 0, 0xffffffff},
    };
    t.insert(t.end(), more.begin(), more.end());
    return t;
}

std::vector<Row> table_esn(uint64_t W) {
    using V = Verdict;
    const Act R = Act::Recv, C = Act::CheckOnly;
    const uint64_t E = uint64_t(1) << 32;
    return {
        {1, R, 0, V::Invalid, 0, 0},                      // 64-bit 0 is never sent
        {2, R, 1, V::Ok, 1, 1},
        {3, C, 0xfffffff0, V::TooOld, 0, 1},              // would be before the SA started
        {4, R, 0x80000000, V::Ok, 0x80000000, 0x80000000},
        {5, R, 0xfffffffe, V::Ok, 0xfffffffe, 0xfffffffe},
        {6, R, 0xffffffff, V::Ok, 0xffffffff, 0xffffffff},
        {7, R, 0, V::Ok, E, E},                           // wrap: low 0 is now 2^32
        {8, R, 0xffffffff, V::Duplicate, 0xffffffff, E},  // high half inferred as 0
        {9, R, 0xfffffffd, V::Ok, 0xfffffffd, E},         // late across the wrap
        {10, R, 1, V::Ok, E + 1, E + 1},
        {11, R, uint32_t(E + 2 - W), V::Ok, E + 2 - W, E + 1},  // exactly the left edge
        // One left of the edge: A2.2 places it in the next subspace (2^32
        // ahead); only the ICV check can tell, so check() says Ok with that guess.
        {12, C, uint32_t(E + 1 - W), V::Ok, 2 * E + 1 - W, E + 1},
        {13, R, 0xfffffffe, V::Duplicate, 0xfffffffe, E + 1},
        {14, R, 0x40000000, V::Ok, E + 0x40000000, E + 0x40000000},  // jump far ahead
        // Window now inside one subspace (case A): an old low number is read as ahead.
        {15, C, 0xffffffff, V::Ok, E + 0xffffffff, E + 0x40000000},
        {16, R, 0x40000000 - W + 1, V::Ok, E + 0x40000000 - W + 1, E + 0x40000000},
        {17, R, 0x40000000, V::Duplicate, E + 0x40000000, E + 0x40000000},
        {18, R, 0xffffffff, V::Ok, E + 0xffffffff, E + 0xffffffff},
        {19, R, 0xffffffff - W + 1, V::Ok, E + 0xffffffff - W + 1, E + 0xffffffff},
        {20, R, 0, V::Ok, 2 * E, 2 * E},                  // second wrap
        {21, R, 0xffffffff - W + 2, V::Ok, E + 0xffffffff - W + 2, 2 * E},  // left edge, case B
        // One left of that edge (2E - W, seen at case 19) is read as 2^32 ahead.
        {22, C, 0xffffffff - W + 1, V::Ok, 3 * E - W, 2 * E},
        {23, R, 0xffffffff - W + 2, V::Duplicate, 2 * E - W + 1, 2 * E},  // the edge, now seen
        // Top's low half exactly W-1: the window is 2E .. 2E+W-1, all in one
        // subspace (case A at its boundary).
        {24, R, W - 1, V::Ok, 2 * E + W - 1, 2 * E + W - 1},
        {25, R, 0, V::Duplicate, 2 * E, 2 * E + W - 1},   // left edge, seen at case 20
        {26, R, 5, V::Ok, 2 * E + 5, 2 * E + W - 1},
        {27, C, 0xffffffff, V::Ok, 3 * E - 1, 2 * E + W - 1},  // one left of it: read as ahead
    };
}

}  // namespace

TEST_CASE("replay window sizes round up to a multiple of 64 within 64..4096") {
    struct {
        uint32_t in, out;
    } cases[] = {{0, 64},      {1, 64},      {64, 64},     {65, 128},   {100, 128},
                 {128, 128},   {1000, 1024}, {1024, 1024}, {4000, 4032}, {4095, 4096},
                 {4096, 4096}, {5000, 4096}};
    for (auto c : cases) {
        INFO(c.in);
        CHECK(Window::round_size(c.in) == c.out);
        CHECK(Window(c.in).size() == c.out);
    }
    CHECK(sizeof(Window) == 536);  // 16-byte header + 65 blocks of 64 bits
}

TEST_CASE("replay window: numbered table without ESN") {
    for (uint32_t size : {64u, 100u, 1024u, 4096u}) {
        Window w(size, false);
        run_table(w, table_32(w.size()));
    }
}

TEST_CASE("replay window: numbered table with ESN (RFC 4303 A2)") {
    for (uint32_t size : {64u, 100u, 1024u, 4096u}) {
        Window w(size, true);
        run_table(w, table_esn(w.size()));
    }
}

TEST_CASE("replay window agrees with a naive set-based reference on random sequences") {
    for (bool esn : {false, true}) {
        for (uint32_t size : {64u, 100u, 1024u, 4096u}) {
            Window w(size, esn);
            NaiveWindow ref{w.size(), esn};
            const uint64_t W = w.size();
            std::mt19937_64 rng(size * 2 + esn);
            // ESN runs start close to the first wrap and jump across many more.
            uint64_t next = esn ? 0xffffffffull - 3 * W : 0;
            std::vector<uint64_t> sent;
            size_t counts[4] = {};
            for (int ev = 0; ev < 100000; ev++) {
                uint64_t s;
                bool genuine = true;  // a packet the peer really sent with number s
                unsigned r = unsigned(rng() % 100);
                if (r < 45) {
                    s = next += 1 + (rng() % 8 == 0 ? rng() % 3 : 0);  // in order, some loss
                } else if (r < 65) {
                    uint64_t back = rng() % (W + W / 2);                // reordered or too old
                    s = next > back ? next - back : 1;
                } else if (r < 77 && !sent.empty()) {
                    s = sent[sent.size() - 1 - rng() % std::min<size_t>(sent.size(), 24)];  // duplicate
                } else if (r < 85) {
                    s = next += 1 + rng() % (4 * W);                    // jump
                } else if (r < 87) {
                    s = next += esn ? rng() % (1ull << 30) : rng() % (1ull << 14);  // far jump
                    if (s == 0) s = next = 1;
                } else if (r < 90) {
                    s = 0;  // never valid; with ESN the low half 0 is valid past 2^32
                } else {
                    s = uint32_t(rng());                                // forged low bits
                    genuine = false;
                }
                if (!esn) REQUIRE(next < 0xffffffffull);
                if (genuine) sent.push_back(s);
                if (sent.size() > 20000) sent.erase(sent.begin(), sent.begin() + 10000);

                const uint32_t lo = uint32_t(s);
                Check c = w.check(lo);
                Check rc = ref.check(lo);
                INFO("esn=" << esn << " size=" << W << " event " << ev << " s=" << s << " top=" << w.top());
                REQUIRE(str(c.verdict) == str(rc.verdict));
                if (c.verdict == Verdict::Ok || c.verdict == Verdict::Duplicate) REQUIRE(c.seq == rc.seq);
                REQUIRE(w.check(lo).seq == c.seq);  // check is const
                counts[int(c.verdict)]++;
                if (c.verdict != Verdict::Ok) continue;
                // The ICV verifies only if the inferred number is the one the
                // peer used; and 1 in 20 genuine packets is corrupted in transit.
                bool icv_ok = genuine && c.seq == s && rng() % 20 != 0;
                if (!icv_ok) continue;
                REQUIRE(str(w.update(c.seq)) == str(ref.update(c.seq)));
                if (rng() % 16 == 0)  // a second copy of the same number in the same burst
                    REQUIRE(str(w.update(c.seq)) == str(ref.update(c.seq)));
                REQUIRE(w.top() == ref.top);
            }
            INFO("esn=" << esn << " size=" << W);
            CHECK(counts[int(Verdict::Ok)] > 10000);
            CHECK(counts[int(Verdict::Duplicate)] > 1000);
            if (!esn) CHECK(counts[int(Verdict::Invalid)] > 1000);
            if (!esn) CHECK(counts[int(Verdict::TooOld)] > 1000);
            if (esn) CHECK(w.top() > (uint64_t(1) << 36));  // crossed many 2^32 boundaries
        }
    }
}
