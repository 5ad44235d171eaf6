#include "control/ha/ha_cli.h"

#include "src/common/clock.h"

namespace nimbus::ha {

void register_commands(mgmt::Registry& reg, std::function<const HaDaemon*()> get) {
    reg.add("show ha", "HA pair: state per VRRP instance, priorities, master, last transition, adverts, errors",
            [get](const mgmt::Args&) {
                const HaDaemon* d = get();
                if (!d) return mgmt::Result::error("% HA is not configured (no 'ha:' section)");
                Time now = mono_ns();
                return mgmt::Result{0, d->status_text(now), d->status_json(now)};
            });
}

void write_metrics(const HaDaemon& d, mgmt::MetricsWriter& w) {
    w.family("nimbus_ha_master", "gauge", "1 while this box is master of its HA sync group");
    w.sample("nimbus_ha_master", d.role() == Role::Master ? 1 : 0);
    w.family("nimbus_ha_role_changes_total", "counter", "Changes of the box's HA role");
    w.sample("nimbus_ha_role_changes_total", double(d.counters().role_changes));
    std::vector<Status> st;
    for (size_t i = 0; i < d.instance_count(); i++) st.push_back(d.instance(i).status());
    auto per = [&](const char* name, const char* type, const char* help, auto value) {
        w.family(name, type, help);
        for (auto& s : st) w.sample(name, {{"instance", s.name}}, double(value(s)));
    };
    per("nimbus_ha_instance_state", "gauge", "VRRP state per instance: 0 init, 1 backup, 2 master",
        [](const Status& s) { return int(s.state); });
    per("nimbus_ha_priority", "gauge", "Effective VRRP priority per instance",
        [](const Status& s) { return s.priority_effective; });
    per("nimbus_ha_fault", "gauge", "1 while a tracked object forces the instance to backup",
        [](const Status& s) { return s.fault ? 1 : 0; });
    per("nimbus_ha_adverts_sent_total", "counter", "VRRP advertisements sent",
        [](const Status& s) { return s.counters.adverts_sent; });
    per("nimbus_ha_adverts_received_total", "counter", "VRRP advertisements received and accepted",
        [](const Status& s) { return s.counters.adverts_rcvd; });
    per("nimbus_ha_became_master_total", "counter", "Transitions to master",
        [](const Status& s) { return s.counters.became_master; });
    w.family("nimbus_ha_rx_drops_total", "counter", "VRRP advertisements dropped, by reason (RFC 5798 §7.1)");
    for (auto& s : st)
        for (size_t k = 1; k < kRxReasonCount; k++)
            w.sample("nimbus_ha_rx_drops_total", {{"instance", s.name}, {"reason", rx_reason_name(RxReason(k))}},
                     double(s.counters.rx_drops[k]));
}

}  // namespace nimbus::ha
