// A zero-latency LAN for VRRP tests: routers (lone instances or sync groups)
// exchange real advertisement packets (built with advert.h, received through
// on_packet and its validator), and time jumps to the earliest deadline.
// Deterministic, no sleeps, no sockets.
#pragma once

#include <catch2/catch.hpp>

#include <deque>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "control/ha/advert.h"
#include "control/ha/sync_group.h"
#include "control/ha/vrrp.h"

namespace nimbus::ha::test {

struct Sim {
    struct Unit {
        std::string box;
        Instance* inst = nullptr;   // a lone instance, or
        SyncGroup* group = nullptr; // a sync group
        bool alive = true;
    };
    struct Port {
        size_t unit;
        size_t member;
        int link;
        Instance* inst;
    };
    struct Transition {
        Time t;
        std::string box;
        std::string inst;
        ActionKind kind;
        std::string reason;
    };

    std::vector<Unit> units;
    std::vector<Port> ports;
    Time now = 0;
    std::vector<Transition> log;
    std::vector<std::pair<Time, size_t>> adverts;   // (time, port) of every advert put on a link
    size_t deliveries = 0;

    size_t add(Instance& i, int link, std::string box) {
        units.push_back({std::move(box), &i, nullptr, true});
        ports.push_back({units.size() - 1, 0, link, &i});
        return units.size() - 1;
    }
    size_t add_group(SyncGroup& g, std::vector<int> links, std::string box) {
        units.push_back({std::move(box), nullptr, &g, true});
        for (size_t m = 0; m < g.size(); m++) ports.push_back({units.size() - 1, m, links.at(m), &g.member(m)});
        return units.size() - 1;
    }
    Instance& inst(size_t unit, size_t member = 0) {
        return units[unit].group ? units[unit].group->member(member) : *units[unit].inst;
    }
    size_t port_of(size_t unit, size_t member) const {
        for (size_t p = 0; p < ports.size(); p++)
            if (ports[p].unit == unit && ports[p].member == member) return p;
        FAIL("no such port");
        return 0;
    }

    static GroupActions lift(Actions a) {
        GroupActions g;
        for (auto& x : a) g.push_back({0, std::move(x)});
        return g;
    }

    void apply(size_t unit, GroupActions acts) {
        std::deque<std::pair<size_t, GroupActions>> q;
        q.emplace_back(unit, std::move(acts));
        while (!q.empty()) {
            auto [u, list] = std::move(q.front());
            q.pop_front();
            for (auto& ma : list) {
                size_t from = port_of(u, ma.member);
                Instance& src = *ports[from].inst;
                const Action& a = ma.action;
                if (a.kind == ActionKind::BecomeMaster || a.kind == ActionKind::BecomeBackup ||
                    a.kind == ActionKind::BecomeInit)
                    log.push_back({now, units[u].box, src.config().name, a.kind, a.reason});
                if (a.kind != ActionKind::SendAdvert) continue;
                adverts.emplace_back(now, from);
                auto pkt = build_advert_packet(src.advert(a.priority), src.config().primary);
                REQUIRE(!pkt.empty());
                for (size_t p = 0; p < ports.size(); p++) {
                    const auto& to = ports[p];
                    if (p == from || to.unit == u || to.link != ports[from].link || !units[to.unit].alive) continue;
                    REQUIRE(++deliveries < 100000);   // no advert storms
                    Unit& tu = units[to.unit];
                    q.emplace_back(to.unit, tu.group ? tu.group->on_packet(now, to.member, pkt)
                                                     : lift(tu.inst->on_packet(now, pkt)));
                }
            }
        }
    }

    void startup(size_t u) {
        units[u].alive = true;
        apply(u, units[u].group ? units[u].group->startup(now) : lift(units[u].inst->startup(now)));
    }
    void shutdown(size_t u) {
        apply(u, units[u].group ? units[u].group->shutdown(now) : lift(units[u].inst->shutdown(now)));
    }
    void move(size_t u, size_t member, int link) { ports[port_of(u, member)].link = link; }
    void kill(size_t u) { units[u].alive = false; }   // crash: silence, no priority 0
    void track(size_t u, const std::string& name, bool up) {
        apply(u, units[u].group ? units[u].group->set_track(now, name, up)
                                : lift(units[u].inst->set_track(now, name, up)));
    }

    std::optional<Time> deadline(size_t u) const {
        if (!units[u].alive) return std::nullopt;
        return units[u].group ? units[u].group->next_deadline() : units[u].inst->next_deadline();
    }

    void run_until(Time until) {
        for (int guard = 0; guard < 1000000; guard++) {
            std::optional<Time> best;
            size_t bu = 0;
            for (size_t u = 0; u < units.size(); u++) {
                auto d = deadline(u);
                if (d && (!best || *d < *best)) best = d, bu = u;
            }
            if (!best || *best > until) {
                now = until;
                return;
            }
            REQUIRE(*best >= now);
            now = *best;
            apply(bu, units[bu].group ? units[bu].group->on_timer(now) : lift(units[bu].inst->on_timer(now)));
        }
        FAIL("simulation did not settle");
    }

    // Boxes whose instance on `link` is Master.
    std::vector<std::string> masters(int link) {
        std::vector<std::string> out;
        for (auto& p : ports)
            if (p.link == link && units[p.unit].alive && p.inst->state() == State::Master)
                out.push_back(units[p.unit].box);
        return out;
    }
    size_t transitions_since(Time t) const {
        size_t n = 0;
        for (auto& x : log)
            if (x.t >= t && x.kind != ActionKind::BecomeInit) n++;
        return n;
    }
    // Time of the last advert sent from (unit, member) at or before t.
    Time last_advert(size_t unit, size_t member, Time t) const {
        Time best = 0;
        for (auto& [at, p] : adverts)
            if (ports[p].unit == unit && ports[p].member == member && at <= t) best = at;
        return best;
    }
    // Time of the first transition of `box` to `kind` at or after t.
    std::optional<Time> first(const std::string& box, ActionKind kind, Time t = 0) const {
        for (auto& x : log)
            if (x.box == box && x.kind == kind && x.t >= t) return x.t;
        return std::nullopt;
    }
};

}  // namespace nimbus::ha::test
