// Alarms: certificates and CRLs near expiry (`show alarms`, the
// nimbus_alarms and nimbus_cert_expiry_seconds metrics). The files are the
// ones the running config names (clouds' PKI, the management API's); they
// are read again at each look (a handful of small files), so a CRL
// published or a certificate renewed on disk clears its alarm at once.
#include <fmt/format.h>

#include "control/daemon/daemon.h"
#include "control/daemon/show.h"
#include "control/pki/expiry.h"
#include "src/common/clock.h"
#include "src/common/table.h"

namespace nimbus::show {

namespace {

using mgmt::Args;
using mgmt::Result;
using nlohmann::json;

std::vector<pki::ExpiryItem> scan(const config::Config& c) {
    std::vector<pki::ExpiryItem> v;
    auto add = [&v](const std::string& file, const char* kind, const std::string& owner) {
        if (file.empty()) return;
        for (auto& it : pki::scan_file(file, kind, owner)) v.push_back(std::move(it));
    };
    for (auto& cl : c.clouds) {
        if (!cl.pki) continue;
        std::string owner = "cloud " + cl.name;
        add(cl.pki->cert, "certificate", owner);
        add(cl.pki->ca, "ca", owner);
        add(cl.pki->crl, "crl", owner);
    }
    if (!c.mgmt.api.listen.empty()) {
        add(c.mgmt.api.cert, "certificate", "mgmt api");
        add(c.mgmt.api.client_ca, "ca", "mgmt api");
    }
    return v;
}

pki::ExpiryThresholds thresholds(const config::Config& c) {
    return pki::ExpiryThresholds{int64_t(c.mgmt.alarm_cert_days) * 86400, int64_t(c.mgmt.alarm_crl_hours) * 3600};
}

Result alarms(Daemon& d, const Args&) {
    auto items = scan(d.config());
    auto list = pki::evaluate(items, int64_t(wall_s()), thresholds(d.config()));
    Table t({{"Severity", "severity"}, {"Kind", "kind"}, {"Object", "object"}, {"Problem", "message"}});
    json out = json::array();
    for (auto& a : list) {
        t.row({a.severity, a.kind, a.object, a.message});
        out.push_back({{"severity", a.severity},
                       {"kind", a.kind},
                       {"object", a.object},
                       {"message", a.message},
                       {"seconds_left", a.seconds_left}});
    }
    std::string text = list.empty() ? "No alarms.\n" : t.text();
    text += fmt::format("({} certificate(s) and CRL(s) checked; thresholds: certificates {} days, CRLs {} hours)\n",
                        items.size(), d.config().mgmt.alarm_cert_days, d.config().mgmt.alarm_crl_hours);
    return Result{0, text, out};
}

}  // namespace

void register_alarms(mgmt::Registry& reg, Daemon& d) {
    reg.add("show alarms", "active alarms: certificates and CRLs near or past expiry, unreadable PKI files",
            [&d](const Args& a) { return alarms(d, a); });
    d.metrics().add([&d](mgmt::MetricsWriter& w) {
        auto items = scan(d.config());
        int64_t now = int64_t(wall_s());
        w.family("nimbus_cert_expiry_seconds", "gauge",
                 "Seconds until a certificate's notAfter or a CRL's nextUpdate (negative: past)");
        for (auto& it : items)
            if (it.error.empty())
                w.sample("nimbus_cert_expiry_seconds",
                         {{"kind", it.kind}, {"owner", it.owner}, {"subject", it.subject}, {"file", it.file}},
                         double(it.expires - now));
        auto list = pki::evaluate(items, now, thresholds(d.config()));
        w.family("nimbus_alarms", "gauge", "Active alarms by kind and severity");
        for (const char* kind : {"cert_expiry", "crl_expiry", "pki_unreadable"})
            for (const char* sev : {"warning", "critical"}) {
                int n = 0;
                for (auto& a : list) n += a.kind == kind && a.severity == sev;
                w.sample("nimbus_alarms", {{"kind", kind}, {"severity", sev}}, n);
            }
    });
}

}  // namespace nimbus::show
