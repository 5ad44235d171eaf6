#include "control/ike/logging_sink.h"

#include <fmt/format.h>

#include "control/ike/messages.h"
#include "src/common/log.h"

namespace nimbus::ike {

namespace {

std::string prefixes(const std::vector<Prefix>& ps) {
    std::string s;
    for (auto& p : ps) s += (s.empty() ? "" : ",") + p.str();
    return s.empty() ? "-" : s;
}

uint32_t tag(const Secret& k) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4 && i < k.size(); i++) v = v << 8 | k.data()[i];
    return v;
}

}  // namespace

void LoggingSink::tunnel_up(const TunnelSpec& t) {
    tunnels_[t.id].spec = t;
    events_.push_back(fmt::format("up {}", t.id));
    if (log_)
        LOG_INFO("ike-sink", "event=tunnel_up tunnel={} cloud={} name=\"{}\" vrf={} remote_prefixes={} local={} remote={} "
                 "udp_encap={}",
                 t.id, t.cloud, t.name, t.vrf, prefixes(t.remote_prefixes), t.paths.local.str(), t.paths.remote.str(),
                 t.paths.udp_encap);
}

void LoggingSink::tunnel_update(const TunnelSpec& t) {
    tunnels_[t.id].spec = t;
    events_.push_back(fmt::format("update {}", t.id));
    if (log_)
        LOG_INFO("ike-sink", "event=tunnel_update tunnel={} remote_prefixes={} local={} remote={} udp_encap={} extra_paths={}",
                 t.id, prefixes(t.remote_prefixes), t.paths.local.str(), t.paths.remote.str(), t.paths.udp_encap,
                 t.paths.extra.size());
}

void LoggingSink::tunnel_down(TunnelId id) {
    tunnels_.erase(id);
    events_.push_back(fmt::format("down {}", id));
    if (log_) LOG_INFO("ike-sink", "event=tunnel_down tunnel={}", id);
}

bool LoggingSink::child_install(const ChildSaSpec& s) {
    if (refuse_installs > 0) {
        refuse_installs--;
        events_.push_back(fmt::format("refused {} {:08x}", s.tunnel, s.spi_in));
        return false;
    }
    Child c;
    c.spi_in = s.spi_in;
    c.spi_out = s.spi_out;
    c.encr_id = s.encr_id;
    c.key_bits = s.key_bits;
    c.key_len = s.key_in.size();
    c.esn = s.esn;
    c.key_in_tag = tag(s.key_in);
    c.key_out_tag = tag(s.key_out);
    auto& t = tunnels_[s.tunnel];
    t.children[s.spi_in] = c;
    if (s.outbound) t.active_out = s.spi_in;
    events_.push_back(fmt::format("in {} {:08x}", s.tunnel, s.spi_in));
    if (s.outbound) events_.push_back(fmt::format("out {} {:08x}", s.tunnel, s.spi_in));
    if (log_)
        LOG_INFO("ike-sink", "event=child_install tunnel={} spi_in={:08x} spi_out={:08x} encr={} key_bits={} esn={} "
                 "outbound={}",
                 s.tunnel, s.spi_in, s.spi_out, s.encr_id == ENCR_CHACHA20_POLY1305 ? "chacha20poly1305" : "aes-gcm-16",
                 s.key_bits, s.esn, s.outbound);
    return true;
}

void LoggingSink::child_outbound(TunnelId id, uint32_t spi_in) {
    tunnels_[id].active_out = spi_in;
    events_.push_back(fmt::format("out {} {:08x}", id, spi_in));
    if (log_) LOG_INFO("ike-sink", "event=child_outbound tunnel={} spi_in={:08x}", id, spi_in);
}

void LoggingSink::child_remove(TunnelId id, uint32_t spi_in) {
    auto it = tunnels_.find(id);
    if (it != tunnels_.end()) {
        it->second.children.erase(spi_in);
        if (it->second.active_out == spi_in) it->second.active_out = 0;
    }
    events_.push_back(fmt::format("rm {} {:08x}", id, spi_in));
    if (log_) LOG_INFO("ike-sink", "event=child_remove tunnel={} spi_in={:08x}", id, spi_in);
}

}  // namespace nimbus::ike
