// A ChildSaSink that keeps what the engine asked for (tunnels, child SAs,
// which outbound SA is active) and logs it, without touching a dataplane.
// nimbusd uses it until the ESP tables are wired in; tests use its record of
// calls to check install and removal order. Keys are not kept: only their
// length, and the spec's Secrets wipe themselves.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "control/ike/sink.h"

namespace nimbus::ike {

class LoggingSink : public ChildSaSink {
public:
    struct Child {
        uint32_t spi_in = 0, spi_out = 0;
        uint16_t encr_id = 0, key_bits = 0;
        size_t key_len = 0;
        bool esn = false;
        // Test support: the key halves' first octets, so that two engines'
        // views of one SA can be compared without keeping whole keys.
        uint32_t key_in_tag = 0, key_out_tag = 0;
    };
    struct Tun {
        TunnelSpec spec;
        std::map<uint32_t, Child> children;  // by spi_in
        uint32_t active_out = 0;              // spi_in of the child whose outbound SA is used
    };

    explicit LoggingSink(bool log = true) : log_(log) {}

    void tunnel_up(const TunnelSpec& t) override;
    void tunnel_update(const TunnelSpec& t) override;
    void tunnel_down(TunnelId id) override;
    bool child_install(const ChildSaSpec& s) override;
    void child_outbound(TunnelId id, uint32_t spi_in) override;
    void child_remove(TunnelId id, uint32_t spi_in) override;
    // Test support: a dataplane-like SA table of slot_mask + 1 slots, some
    // of them taken by others.
    uint32_t spi_slot_mask() const override { return slot_mask; }
    bool spi_slot_free(uint32_t spi) const override { return !slot_taken || !slot_taken(spi & slot_mask); }
    uint32_t slot_mask = 0xffffffffu;
    std::function<bool(uint32_t)> slot_taken;
    // Test support: the next this many child_install calls fail, as a full
    // dataplane's would ("refused T SPI" in events()).
    int refuse_installs = 0;

    const std::map<TunnelId, Tun>& tunnels() const { return tunnels_; }
    // "up T", "update T", "down T", "in T SPI", "out T SPI", "rm T SPI" in call order.
    const std::vector<std::string>& events() const { return events_; }
    void clear_events() { events_.clear(); }

private:
    bool log_;
    std::map<TunnelId, Tun> tunnels_;
    std::vector<std::string> events_;
};

}  // namespace nimbus::ike
