// IKE SA and Child SA state (RFC 7296 §2), as the engine keeps it. Plain
// data: the engine's exchange handlers (ike_sa_init.cpp, ike_auth.cpp,
// create_child.cpp, informational.cpp) move it from state to state. Keys
// live in Secrets and DhKeys, which wipe themselves when an SA goes.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/ike/dh.h"
#include "control/ike/fragments.h"
#include "control/ike/keymat.h"
#include "control/ike/natt.h"
#include "control/ike/payloads.h"
#include "control/ike/policy.h"
#include "control/ike/sink.h"
#include "control/ike/sk.h"
#include "control/ike/tunnel_events.h"
#include "control/pki/identity.h"

namespace nimbus::ike {

using Bytes = std::vector<uint8_t>;

enum class IkeState : uint8_t {
    InitSent,      // initiator: IKE_SA_INIT request out
    AuthSent,      // initiator: IKE_AUTH request out
    HalfOpen,      // responder: IKE_SA_INIT answered, waiting for IKE_AUTH
    Established,
    Rekeyed,       // replaced by a new IKE SA; waits for its DELETE (§2.18)
    Deleting,      // our DELETE is out
    Dead,          // to be destroyed
};
const char* ike_state_name(IkeState s);

enum class ChildState : uint8_t {
    Installed,
    Rekeyed,       // replaced: inbound kept until the old SA is deleted (+ linger)
    Deleting,      // our DELETE is out
};
const char* child_state_name(ChildState s);

struct ChildSa {
    uint32_t spi_in = 0, spi_out = 0;
    Proposal proposal;                 // ESP, one transform per type
    uint16_t encr_id = 0, key_bits = 0;
    bool esn = false;
    uint16_t pfs_group = 0;            // DH group used on rekey (0 = none)
    std::vector<TrafficSelector> ts_local, ts_remote;
    ChildState state = ChildState::Installed;
    bool outbound_active = false;
    uint64_t created_ns = 0;
    uint64_t rekey_at_ns = 0;          // 0 = never (responder of a rekeyed-away SA)
    uint64_t remove_at_ns = 0;         // Rekeyed: when the old inbound SA goes
    uint32_t replaced_by = 0;          // spi_in of the successor
    bool created_by_us = false;        // we initiated the exchange that made it
};

// Work we want to do on an IKE SA; one request is outstanding at a time
// (we never announce a window larger than 1).
enum class TaskKind : uint8_t { Liveness, RekeyChild, RekeyIke, DeleteChild, DeleteIke, MobikeUpdate, ProbeAddress };
const char* task_name(TaskKind k);

struct Task {
    TaskKind kind;
    uint32_t spi = 0;                  // RekeyChild / DeleteChild: our inbound SPI of the child
    std::vector<uint32_t> spis;        // DeleteChild: several
    IpAddr addr;                       // ProbeAddress: the peer's additional address to check
    bool unused = false;               // DeleteChild: spis name a child the peer made and we did not install
};

// Our outstanding request.
struct Request {
    TaskKind kind = TaskKind::Liveness;
    bool init = false;                 // IKE_SA_INIT (initiator)
    bool auth = false;                 // IKE_AUTH (initiator)
    uint32_t msgid = 0;
    std::vector<Bytes> datagrams;      // as sent (fragments: several)
    std::optional<Endpoint> to;        // not to the SA's peer address (ProbeAddress)
    uint64_t first_sent_ns = 0, next_retx_ns = 0;
    int tries = 0;
    int held = 0;                      // retransmissions held back: the answer was queued
    // exchange context
    uint32_t child_spi = 0;            // the child being rekeyed / deleted
    std::vector<uint32_t> spis;
    uint32_t new_spi_in = 0;           // rekeyed child's new inbound SPI
    uint64_t new_ike_spi = 0;          // IKE rekey: our SPI of the new IKE SA
    Bytes nonce;
    std::unique_ptr<DhKey> dh;
    std::vector<Proposal> offered;
    std::vector<TrafficSelector> tsi, tsr;
};

struct PeerAddress {
    IpAddr addr;
    bool validated = false;
};

struct IkeSa {
    // identity of the SA
    uint64_t spi_i = 0, spi_r = 0;
    bool initiator = false;            // we are the original initiator of THIS IKE SA
    uint64_t local_spi() const { return initiator ? spi_i : spi_r; }
    IkeState state = IkeState::HalfOpen;
    TunnelId tunnel = 0;               // 0 until authenticated
    uint32_t queued = 0;               // messages for it in the engine's work queue
    uint32_t queued_request = 0;       // the message ID of the last whole request queued

    // addresses
    Endpoint local, remote;
    Endpoint init_remote;              // where IKE_SA_INIT came from (retransmission lookup)
    NatState nat;
    bool natt = false;                 // on the NAT-T port (4500, non-ESP marker)

    // negotiated
    Proposal proposal;
    uint16_t prf = 0, encr = 0, key_bits = 0, dh_group = 0;
    Bytes ni, nr;
    std::unique_ptr<DhKey> dh;         // until the keys are derived
    Secret sk_d, sk_pi, sk_pr;
    std::optional<SkCipher> cin, cout; // peer → us, us → peer
    Bytes init_request, init_response; // RealMessage1/2 for AUTH (§2.15); dropped once authenticated
    Bytes cookie;                      // initiator: the responder's COOKIE to echo
    bool peer_frag = false;            // RFC 7383 negotiated
    std::vector<uint16_t> peer_hashes; // RFC 7427 SIGNATURE_HASH_ALGORITHMS from the peer
    bool peer_mobike = false;          // RFC 4555 negotiated
    bool sent_initial_contact = false;

    // policy
    std::shared_ptr<const CloudPolicy> cloud;
    int site = -1;                     // index in cloud->sites; -1 for an initiate entry
    int initiate = -1;                 // index in policy.initiate (initiator role)
    pki::Identity peer_id, local_id;
    std::string peer_cert_subject;
    uint8_t auth_method = 0;           // the peer's

    // message IDs (§2.3)
    uint32_t next_msgid = 0;           // our next request
    uint32_t peer_msgid = 0;           // the peer's next request
    bool have_cached = false;
    uint32_t cached_msgid = 0;
    std::vector<Bytes> cached_response;
    Endpoint cached_to;
    std::unique_ptr<Request> out;      // our outstanding request
    std::deque<Task> tasks;
    FragmentReassembly reasm;
    uint32_t reasm_msgid = 0;
    bool reasm_response = false;

    // children
    std::vector<ChildSa> children;

    // timers and liveness (monotonic ns)
    uint64_t created_ns = 0;
    uint64_t established_ns = 0;
    uint64_t last_rx_ns = 0;           // last authenticated message from the peer
    uint64_t last_probe_ns = 0;        // last liveness request we started
    uint64_t rekey_at_ns = 0;
    uint64_t keepalive_at_ns = 0;
    uint64_t expire_at_ns = 0;         // HalfOpen / Rekeyed / Deleting deadline
    uint64_t wake_ns = 0;              // as scheduled in the engine's timer set

    // rekey bookkeeping
    uint64_t rekeyed_to = 0;           // Rekeyed: local SPI of the successor
    // collisions (§2.8.1, §2.8.2): a rekey of the same SA the peer started
    // while ours was outstanding, and what it created
    struct Collision {
        bool active = false;
        Bytes peer_ni, our_nr;         // the nonces of the peer's exchange
        uint32_t their_child = 0;      // child rekey: spi_in of the child their exchange made
        uint64_t their_ike = 0;        // IKE rekey: local SPI of the IKE SA their exchange made
    };
    Collision child_collision;         // for the child named by out->child_spi
    Collision ike_collision;

    // MOBIKE (RFC 4555)
    std::vector<PeerAddress> peer_addresses;
    uint64_t mobike_cookie2_ns = 0;

    ChildSa* child_by_in(uint32_t spi) {
        for (auto& c : children)
            if (c.spi_in == spi) return &c;
        return nullptr;
    }
    ChildSa* child_by_out(uint32_t spi) {
        for (auto& c : children)
            if (c.spi_out == spi) return &c;
        return nullptr;
    }
};

// A tunnel: one site of a cloud, or one initiate entry. It outlives IKE
// SAs; `ike` is the local SPI of the IKE SA that carries it now (0: none).
struct Tunnel {
    TunnelId id = 0;
    std::string cloud;
    std::string name;
    int initiate = -1;
    uint64_t ike = 0;
    bool up = false;                   // tunnel_up sent to the sink
    uint64_t up_since_ns = 0;
    uint32_t child_rekeys = 0, ike_rekeys = 0;
    uint64_t rtt_ns = 0;               // last liveness round trip (0: none yet)
    uint64_t rtt_at_ns = 0;
    uint32_t connects = 0;
    TunnelHistory hist;                // RTT statistics, flaps, events
    DownReason pending_down = DownReason::none;  // why the next down happens (clear, config)
    TunnelSpec spec;                   // as last given to the sink
    // initiator role: reconnection
    uint64_t reconnect_at_ns = 0;
    uint64_t reconnect_backoff_ns = 0;
    bool initiated_once = false;
};

}  // namespace nimbus::ike
