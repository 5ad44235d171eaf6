// The IKEv2 engine (RFC 7296 with RFC 7383 fragmentation, RFC 7427 and
// RFC 4754 ECDSA authentication, RFC 4555 MOBIKE, NAT traversal): one
// object on the control thread, responder for sites and initiator for the
// edge role at once. It is driven from outside:
//
//   engine.receive(local, remote, datagram)   a UDP datagram arrived
//   engine.on_timer()                         when now() >= next_timer()
//
// and it talks to the network through a Transport and to the dataplane
// through a ChildSaSink. Time comes from a clock function, so tests drive
// retransmissions, DPD and rekeys without waiting.
//
// The exchange handlers are split by exchange: ike_sa_init.cpp, ike_auth.cpp,
// create_child.cpp and informational.cpp; this file's engine.cpp holds the
// SA tables, message-ID windows, retransmission and timers.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "control/ike/codec.h"
#include "control/ike/cookie.h"
#include "control/ike/policy.h"
#include "control/ike/sa.h"
#include "control/ike/sink.h"
#include "control/ike/transport.h"
#include "control/ike/ts.h"
#include "control/ike/proposal.h"

namespace nimbus::ike {

// Engine counters: one table feeds `show ike counters`, logs and tests.
#define NIMBUS_IKE_COUNTERS(X)                                                             \
    X(rx_datagrams, "IKE datagrams received")                                              \
    X(rx_malformed, "messages that did not parse (counted and dropped)")                   \
    X(rx_unknown_spi, "messages for no IKE SA we know")                                    \
    X(rx_decrypt_failed, "SK/SKF payloads that failed the integrity check")               \
    X(rx_bad_msgid, "requests or responses outside the Message ID window")                \
    X(rx_unexpected, "messages not valid in the SA's state")                               \
    X(rx_retransmits, "repeated requests answered from the cached response")               \
    X(rx_esp_on_ike_port, "ESP-in-UDP that reached the IKE socket")                        \
    X(rx_keepalives, "NAT keepalives received")                                            \
    X(rx_fragments, "IKE fragments received (RFC 7383)")                                   \
    X(tx_messages, "IKE messages sent (a fragmented one counts once)")                     \
    X(tx_fragments, "IKE fragments sent")                                                  \
    X(tx_retransmits, "our requests sent again")                                           \
    X(tx_errors, "datagrams the kernel refused")                                           \
    X(tx_keepalives, "NAT keepalives sent")                                                \
    X(cookies_sent, "COOKIE challenges sent (half-open threshold passed)")                 \
    X(cookies_invalid, "IKE_SA_INIT with a wrong or stale COOKIE")                         \
    X(half_open_source_limit, "IKE_SA_INIT dropped: too many half-open SAs from the address") \
    X(half_open_expired, "half-open IKE SAs that never authenticated")                     \
    X(half_open_full, "IKE_SA_INIT dropped: the half-open table is full (initiator retries)") \
    X(invalid_ke, "INVALID_KE_PAYLOAD sent or received")                                   \
    X(no_proposal, "NO_PROPOSAL_CHOSEN sent or received")                                  \
    X(auth_ok, "peers authenticated")                                                      \
    X(auth_failed, "authentication failures (AUTHENTICATION_FAILED)")                     \
    X(auth_revoked, "certificates refused as revoked")                                     \
    X(cert_direct, "peer certificates accepted by nimbus's DER reader (root-issued, common shape)") \
    X(cert_openssl, "peer certificates accepted by OpenSSL's full path (other shapes, chains)") \
    X(ts_unacceptable, "child SAs refused with TS_UNACCEPTABLE")                          \
    X(ike_established, "IKE SAs established")                                              \
    X(ike_deleted, "IKE SAs deleted")                                                      \
    X(child_installed, "child SAs installed")                                              \
    X(child_install_failed, "child SAs the dataplane could not take (tables full, no memory)") \
    X(child_removed, "child SAs removed")                                                  \
    X(child_rekeys, "child SA rekeys completed")                                           \
    X(ike_rekeys, "IKE SA rekeys completed")                                               \
    X(rekey_collisions, "simultaneous rekeys resolved (RFC 7296 §2.8.1, §2.8.2)")          \
    X(dpd_dead, "peers declared dead by liveness checks")                                  \
    X(request_timeouts, "requests that got no answer after all retransmissions")           \
    X(initial_contact, "stale IKE SAs removed on INITIAL_CONTACT or reconnection")         \
    X(rx_queued, "handshake messages queued for public-key work")                       \
    X(rx_queued_repeats, "repeated requests dropped while their first copy waits in the queue") \
    X(rx_queue_full, "handshake messages dropped: the work queue was full (peer retries)") \
    X(mobike_updates, "UPDATE_SA_ADDRESSES processed (RFC 4555)")                          \
    X(nat_mapping_changes, "peer address changes followed without MOBIKE (§2.23)")            \
    X(local_address_lost, "IKE SAs dropped: their local address (an HA virtual IP) left the box") \
    X(closing_deletes, "IKE SAs deleted because nimbusd stops (RFC 7296 §1.4.1)")                 \
    X(closing_refused, "IKE_SA_INIT requests ignored while nimbusd stops (the peer retries)") \
    X(timers_overdue, "SA timers still due right after they ran (a bug: retried 1 ms later instead of spinning)")

enum class Counter : uint16_t {
#define NIMBUS_X(n, d) n,
    NIMBUS_IKE_COUNTERS(NIMBUS_X)
#undef NIMBUS_X
        Count
};
inline constexpr int kCounterCount = int(Counter::Count);
const char* counter_name(int i);
const char* counter_help(int i);

// For `show ike sa` and tests.
struct ChildInfo {
    uint32_t spi_in = 0, spi_out = 0;
    std::string proposal;
    std::string state;
    bool outbound_active = false;
    std::string ts_local, ts_remote;
    uint64_t age_s = 0;
};

struct SaInfo {
    uint64_t spi_i = 0, spi_r = 0;
    bool initiator = false;
    std::string state;
    TunnelId tunnel = 0;
    std::string cloud, peer_id, local_id;
    Endpoint local, remote;
    bool natt = false, nat_local = false, nat_remote = false;
    bool mobike = false, fragmentation = false;
    std::string proposal;
    std::string auth;
    uint64_t age_s = 0, established_s = 0;
    std::vector<ChildInfo> children;
};

struct TunnelInfo {
    TunnelId id = 0;
    std::string cloud, name;
    std::string state;        // "up", "connecting", "down"
    uint64_t uptime_s = 0;
    double rtt_ms = -1;       // last liveness round trip, -1 if none yet
    double rtt_min_ms = -1, rtt_avg_ms = -1, rtt_max_ms = -1;
    uint64_t rtt_samples = 0;
    uint32_t child_rekeys = 0, ike_rekeys = 0;
    uint32_t flaps = 0;       // up -> down transitions
    std::string last_down;    // down_reason_name(), "" if never down
    std::string last_down_detail;
    int64_t last_down_age_s = -1;
    std::vector<std::string> paths;
    std::vector<std::string> prefixes;
    std::string remote;       // the peer's address while up
    uint64_t ike_spi = 0;
    int children = 0;
};

class Engine {
public:
    using Clock = std::function<uint64_t()>;
    Engine(Policy policy, Transport& net, ChildSaSink& sink, Clock now);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // A datagram arrived on local (address and port) from remote.
    void receive(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> data);
    // Several datagrams read in one go. Messages that cost public-key work
    // (IKE_AUTH requests and responses, IKE_SA_INIT responses: signatures,
    // certificate chains, DH) are queued in arrival order and run from
    // on_timer() in slices of settings.work_slice_ns, so a reconnect storm
    // neither holds the control thread (VRRP, the CLI, ZAPI share it) nor
    // overflows the socket: the kernel would drop what waits there and the
    // peer would sit out its retransmission back-off. IKE_AUTH runs before
    // IKE_SA_INIT responses: finishing handshakes first. Everything else
    // (IKE_SA_INIT requests with their cookie check, and all exchanges of
    // established SAs, liveness first among them) is handled at once. While
    // an SA has a message queued, its retransmission and half-open timers
    // wait: the answer is here, only not yet read.
    struct Datagram {
        Endpoint local, remote;
        std::span<const uint8_t> data;
    };
    void receive_batch(std::span<const Datagram> batch);
    size_t queued() const { return work_[0].size() + work_[1].size(); }
    // Runs what is due (and a slice of the queue); next_timer() says when
    // to call again (UINT64_MAX: nothing; now while work is queued).
    void on_timer();
    uint64_t next_timer() const;

    // New configuration: clouds, sites and initiate entries are replaced;
    // established SAs keep the credentials they authenticated with; tunnels
    // of sites that are gone are closed.
    void set_policy(Policy p);
    const Policy& policy() const { return policy_; }
    // What a cloud (by VRF) offers to its sites besides its `advertise`
    // list: with FRR, the routes `routing.clouds[].advertise[_bgp]` name
    // (RFC 7296 §2.9: our TSr is narrowed to what we offer). Read at each
    // child SA negotiation, so routes learned later are offered to the next.
    using Offered = std::function<std::vector<Prefix>(int vrf)>;
    void set_offered(Offered f) { offered_ = std::move(f); }
    // Starts the initiate entries (edge role).
    void start();
    // Starts one initiate entry now (the benchmark paces its load with it).
    void initiate_entry(size_t index) {
        started_ = true;
        initiate(int(index));
        reap();
    }

    // Graceful stop (RFC 7296 §1.4.1): every established IKE SA is deleted
    // with an INFORMATIONAL DELETE, so its peer learns at once that the SA
    // and its child SAs are gone instead of after its dead-peer detection
    // (an edge reconnects after its back-off, §2.4). SAs for which
    // `silent(local address)` is true are left as they are (HA virtual IPs:
    // the pair goes on serving those sites from the other box, see
    // drop_local), and so are SAs still being set up. From the first call
    // on, nothing new starts: IKE_SA_INIT requests are ignored, initiate
    // entries do not reconnect, no rekeys or liveness checks. Calls after
    // the first delete what has become established since (a handshake that
    // was half-open, an IKE rekey the peer made), and what `burst` left
    // over: at most that many DELETEs start per call, so that a thousand
    // of them do not overflow the host interface's queue in one go (the
    // caller calls again after the loop has carried them out). Returns how
    // many DELETEs were started by this call; closing() is how many have
    // not been answered yet (0, and nothing left to start: the caller may go).
    size_t close_all(const std::function<bool(const IpAddr&)>& silent = {},
                     size_t burst = std::numeric_limits<size_t>::max());
    size_t closing() const { return closing_spis_.size(); }
    bool is_closing() const { return closing_; }

    // Operator actions.
    bool clear_tunnel(TunnelId id, std::string* err);
    // HA: `addr` (a virtual IP) is no longer ours. Every IKE SA bound to it
    // goes at once with its children and tunnel (the dataplane forgets
    // them), without a DELETE: we can no longer send from that address,
    // and the sites' next exchange reaches the new master, which they
    // re-authenticate with. Returns how many IKE SAs went.
    size_t drop_local(const IpAddr& addr, const char* why);
    // Test hooks (named so): start a rekey or a liveness check now, or
    // move an IKE SA we initiated to another local address (MOBIKE).
    bool rekey_child_for_test(TunnelId id, std::string* err);
    bool rekey_ike_for_test(TunnelId id, std::string* err);
    bool liveness_for_test(TunnelId id, std::string* err);
    bool mobike_move_for_test(TunnelId id, const IpAddr& new_local, std::string* err);

    // Introspection.
    std::vector<SaInfo> sas() const;
    // The SAs of the tunnels with ids in (after, last], sorted like sas();
    // with after == 0, also those of no tunnel yet (half-open). One scan of
    // the SA table, copying only those: `show ike sa tunnel ID` and the
    // listing's slices (with nth_tunnel_after) need not copy them all.
    std::vector<SaInfo> sas(TunnelId after, TunnelId last) const;
    // The id of the n-th tunnel after `after` (n >= 1), or TunnelId's
    // maximum when fewer remain (then (after, that] holds all the rest).
    TunnelId nth_tunnel_after(TunnelId after, size_t n) const;
    std::vector<TunnelInfo> tunnels() const;
    // At most n tunnels with ids above `after`, in id order (ids start at 1):
    // a listing goes through 100,000 tunnels a slice at a time, and tunnels
    // that come and go meanwhile shift nothing.
    std::vector<TunnelInfo> tunnels(TunnelId after, size_t n) const;
    // How many tunnels per cloud are up, connecting or down (as
    // TunnelInfo::state says), without building a TunnelInfo each.
    std::map<std::string, std::array<uint64_t, 3>> tunnel_counts() const;
    // Each tunnel, in id order, as much as a metrics scrape needs, without
    // building a TunnelInfo (whose strings are formatted for the CLI).
    struct TunnelBrief {
        TunnelId id;
        const std::string& cloud;
        const std::string& name;
        int state;      // 0 up, 1 connecting, 2 down (TunnelInfo::state)
        double rtt_ms;  // last liveness round trip, -1: none yet
        uint32_t flaps;
    };
    void each_tunnel(const std::function<void(const TunnelBrief&)>& fn) const;
    // The ids of the tunnels with this name (site), in id order: one scan,
    // no TunnelInfo built.
    std::vector<TunnelId> tunnel_ids_named(const std::string& name) const;
    // A tunnel's event history, oldest first, with ages (now - at) in ns;
    // false if there is no such tunnel.
    struct Event {
        uint64_t age_ns = 0;
        EventKind kind = EventKind::Up;
        DownReason reason = DownReason::none;
    };
    bool history(TunnelId id, TunnelInfo* info, std::vector<Event>* events) const;
    // Tunnels that went down, by reason, since start (for metrics).
    const uint64_t* downs() const { return downs_; }
    uint64_t counter(Counter c) const { return counters_[int(c)]; }
    const uint64_t* counters() const { return counters_; }
    size_t half_open() const { return half_open_.total(); }
    size_t sa_count() const { return sas_.size(); }
    const IkeSa* sa_for_test(uint64_t local_spi) const;
    const Tunnel* tunnel_for_test(TunnelId id) const;
    CookieJar& cookies_for_test() { return cookies_; }

    // Exchange handlers and helpers (engine internals, shared by the
    // per-exchange .cpp files).
    struct Rx {
        Endpoint local, remote;
        std::span<const uint8_t> raw;   // the IKE message (marker stripped)
        Message msg;
    };

private:
    // engine.cpp
    struct Work {
        Endpoint local, remote;
        Bytes data;
    };
    bool deferred(const Datagram& d, IkeSa** owner);
    void run_queued(uint64_t budget_ns);
    void dispatch(Rx& rx);
    void handle_request(IkeSa& sa, Rx& rx);
    void handle_response(IkeSa& sa, Rx& rx);
    bool open(IkeSa& sa, Rx& rx, bool* complete);
    void send_raw(const Endpoint& local, const Endpoint& remote, std::span<const uint8_t> msg);
    void send_response(IkeSa& sa, Rx& rx, uint8_t exchange, std::vector<Payload> payloads);
    bool send_request(IkeSa& sa, std::unique_ptr<Request> req, uint8_t exchange, std::vector<Payload> payloads);
    std::vector<Bytes> seal(IkeSa& sa, const Header& h, const std::vector<Payload>& payloads);
    void transmit(IkeSa& sa, const std::vector<Bytes>& dgrams, const Endpoint& to);
    void next_task(IkeSa& sa);
    void probe_addresses(IkeSa& sa);
    void queue(IkeSa& sa, Task t);
    void sa_timer(IkeSa& sa, uint64_t now);
    void schedule(IkeSa& sa);
    static uint64_t probe_interval(const IkeSa& sa, uint64_t iv);
    void destroy(IkeSa& sa, const char* why);
    void reap();
    void count(Counter c, uint64_t n = 1) { counters_[int(c)] += n; }
    void set_reconnect(Tunnel& t, uint64_t at);
    uint64_t new_spi();
    uint32_t new_child_spi();
    IkeSa* find(uint64_t local_spi);
    IkeSa& add_sa(std::unique_ptr<IkeSa> sa);
    void note_rx(IkeSa& sa, const Rx& rx);
    size_t max_message(const IkeSa& sa) const;

    // ike_sa_init.cpp
    void init_request(Rx& rx);
    void init_response(IkeSa& sa, Rx& rx);
    void initiate(int index);
    void send_init(IkeSa& sa);
    bool derive_ike_keys(IkeSa& sa, std::span<const uint8_t> g_ir, const IkeSa* rekeyed = nullptr);

    // ike_auth.cpp
    void auth_request(IkeSa& sa, Rx& rx);
    void auth_response(IkeSa& sa, Rx& rx);
    void send_auth_request(IkeSa& sa);
    void auth_fail(IkeSa& sa, Rx& rx, uint16_t notify, const std::string& why);

    // create_child.cpp
    void create_child_request(IkeSa& sa, Rx& rx);
    void create_child_response(IkeSa& sa, Rx& rx);
    void start_rekey_child(IkeSa& sa, uint32_t spi);
    void start_rekey_ike(IkeSa& sa);
    void resolve_child_collision(IkeSa& sa, uint32_t old_spi, uint32_t ours, const Bytes& our_ni,
                                 const Bytes& our_nr);
    void resolve_ike_collision(IkeSa& sa, uint64_t ours, const Bytes& our_ni, const Bytes& our_nr);
    void move_children(IkeSa& from, IkeSa& to);

    // informational.cpp
    void informational_request(IkeSa& sa, Rx& rx);
    void informational_response(IkeSa& sa, Rx& rx);
    void start_informational(IkeSa& sa, const Task& t);
    void peer_moved(IkeSa& sa, const Rx& rx);

    // children (child.cpp)
    struct ChildResult {
        bool ok = false;
        uint16_t notify = 0;
        uint16_t group = 0;   // INVALID_KE_PAYLOAD: the group to ask for
        std::string why;
        ChildSa child;
        TsResult tsi, tsr;
    };
    ChildResult negotiate_child(IkeSa& sa, const SaPayload* sap, const TsPayload* tsi, const TsPayload* tsr,
                                bool ignore_dh, std::optional<uint16_t> ke_group);
    bool key_child(IkeSa& sa, ChildSa& c, std::span<const uint8_t> g_ir, const Bytes& ni, const Bytes& nr,
                   bool we_initiated, ChildSaSpec* spec);
    // False: the dataplane refused it (nothing of it is left; the caller
    // answers or tears down accordingly).
    bool install_child(IkeSa& sa, ChildSa c, ChildSaSpec spec);
    void delete_unused_child(IkeSa& sa, uint32_t spi_in);
    void remove_child(IkeSa& sa, uint32_t spi_in, const char* why);
    void tunnel_attach(IkeSa& sa);
    void tunnel_refresh(IkeSa& sa);
    void tunnel_detach(IkeSa& sa, const char* why);
    TunnelInfo tunnel_info(const Tunnel& t, uint64_t now) const;
    int tunnel_state(const Tunnel& t) const;  // 0 up, 1 connecting, 2 down
    void tunnel_event(Tunnel& t, EventKind k, DownReason r = DownReason::none);
    TunnelSpec tunnel_spec(const IkeSa& sa) const;
    Tunnel* tunnel_of(const IkeSa& sa);
    TunnelId tunnel_id_for(const std::string& cloud, const std::string& name, int initiate);
    void replace_stale(IkeSa& sa, bool initial_contact);

    Policy policy_;
    Offered offered_;
    Transport& net_;
    ChildSaSink& sink_;
    Clock now_;
    CookieJar cookies_;
    HalfOpen half_open_;
    std::unordered_map<uint64_t, std::unique_ptr<IkeSa>> sas_;     // by local SPI
    std::map<std::pair<uint64_t, Endpoint>, uint64_t> init_index_;  // (SPIi, source) → local SPI
    std::set<std::pair<uint64_t, uint64_t>> timers_;                // (deadline, local SPI)
    std::map<TunnelId, Tunnel> tunnels_;
    std::set<std::pair<uint64_t, TunnelId>> reconnects_;            // (when, tunnel), initiator role
    // Our inbound SPIs in use or reserved for a request in flight, by
    // their dataplane slot (spi & sink.spi_slot_mask()): unique there.
    std::unordered_set<uint32_t> child_slots_;
    void free_child_spi(uint32_t spi) { child_slots_.erase(spi & sink_.spi_slot_mask()); }
    std::map<std::pair<std::string, std::string>, TunnelId> tunnel_ids_;
    TunnelId next_tunnel_ = 1;
    std::vector<uint64_t> doomed_;
    // Handshakes waiting for public-key work: [0] IKE_AUTH (finishing a
    // handshake) runs before [1] IKE_SA_INIT responses (continuing one).
    std::deque<Work> work_[2];
    size_t work_bytes_ = 0;
    uint64_t counters_[kCounterCount] = {};
    uint64_t downs_[kDownReasonCount] = {};
    bool started_ = false;
    bool closing_ = false;                       // close_all() was called
    std::unordered_set<uint64_t> closing_spis_;  // local SPIs whose DELETE is not answered yet
};

}  // namespace nimbus::ike
