// The IKE engine's view of the configuration: clouds with their proposals,
// credentials and sites, the edge role's initiate entries, and the engine's
// tunables. Built from config::Config by service.cpp (and directly by tests
// and the benchmark); the engine never reads YAML.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <string>
#include <vector>

#include "control/ike/natt.h"
#include "control/ike/payloads.h"
#include "control/ike/secret.h"
#include "control/ike/ts.h"
#include "control/pki/identity.h"
#include "control/pki/pki.h"
#include "src/common/addr.h"

namespace nimbus::ike {

struct SitePolicy {
    std::string name;               // the identity as configured, for logs and `show`
    pki::Identity id;
    std::vector<Prefix> prefixes;   // what the site may hold
    Secret psk;                     // empty: the cloud's
    std::vector<int> critical_dscp;
};

struct CloudPolicy {
    std::string name;
    int vrf = 0;
    std::shared_ptr<const pki::TrustStore> trust;   // null: no certificate authentication
    std::shared_ptr<const pki::Credential> cred;    // our certificate and key
    Secret psk;
    pki::Identity local_id;         // empty: certificate subject, or our address for PSK
    std::vector<Proposal> ike;      // from the strongSwan-style strings
    std::vector<Proposal> esp;
    std::vector<Prefix> advertise;  // offered to sites (empty: accept what they ask for)
    uint32_t dpd_interval_s = 10;
    uint32_t dpd_retries = 3;
    uint32_t rekey_ike_s = 14400;
    uint32_t rekey_child_s = 3600;
    std::vector<SitePolicy> sites;

    // Built by index_sites(): sites by identity (exact key for FQDN,
    // e-mail and address identities, the CN for distinguished names; DNs
    // without a CN are scanned), and every site's prefixes.
    std::unordered_multimap<std::string, int> site_index;
    std::vector<int> site_scan;
    PrefixIndex all_prefixes;
    bool indexed = false;
};

// Fills the lookup structures above; call after the sites are set.
void index_sites(CloudPolicy& c);
// The site whose identity matches `peer`, or -1.
int find_site(const CloudPolicy& c, const pki::Identity& peer);

struct InitiatePolicy {
    IpAddr peer;
    uint16_t peer_port = 0;               // 0: settings.port_ike (NAT-T: settings.port_natt)
    std::optional<IpAddr> local;          // source address; default: the kernel's choice
    std::shared_ptr<const pki::Credential> cred;   // default: the cloud's
    std::string cloud;
    pki::Identity local_id;               // empty: certificate subject
    pki::Identity remote_id;              // empty: any identity the cloud's CA vouches for
    std::vector<Prefix> local_prefixes;
    std::vector<Prefix> remote_prefixes;  // empty: 0.0.0.0/0 and ::/0
};

// The tunnel name of an initiate entry: the peer, "local->peer" when the
// entry sets its source address, and the identity first when it sets one
// ("store-0001->192.0.2.10"): entries to one peer that differ only in
// who they are (one edge standing in for several sites) are tunnels of
// their own.
inline std::string initiate_name(const InitiatePolicy& in) {
    std::string n = in.local ? in.local->str() + "->" + in.peer.str() : in.peer.str();
    if (!in.local_id.empty()) n = in.local_id.str() + (in.local ? "@" : "->") + n;
    return n;
}

struct EngineSettings {
    uint16_t port_ike = 500;
    uint16_t port_natt = 4500;
    size_t cookie_threshold = 500;
    size_t half_open_per_source = 50;
    size_t max_half_open = 20000;         // beyond this, new IKE_SA_INITs wait (are dropped) even with a cookie
    size_t fragment_size = 1280;          // IP packet size limit for fragmented messages
    uint64_t retransmit_timeout_ns = 1'000'000'000ull;
    int retransmit_tries = 5;
    uint64_t keepalive_ns = 20'000'000'000ull;
    uint64_t half_open_timeout_ns = 30'000'000'000ull;
    uint64_t old_inbound_linger_ns = 2'000'000'000ull;   // old inbound SA kept after a rekey
    uint64_t reconnect_max_ns = 30'000'000'000ull;
    uint32_t replay_window = 1024;
    // Handshake messages that need public-key work wait in a queue and run
    // in slices of this much control-thread time (Engine::receive_batch).
    uint64_t work_slice_ns = 5'000'000ull;
    size_t max_queued = 20000;              // messages; beyond it they are dropped (the peer retries)
    size_t max_queued_bytes = 64u << 20;
};

struct Policy {
    EngineSettings settings;
    std::vector<std::shared_ptr<const CloudPolicy>> clouds;
    std::vector<InitiatePolicy> initiate;

    const CloudPolicy* cloud(const std::string& name) const {
        for (auto& c : clouds)
            if (c->name == name) return c.get();
        return nullptr;
    }
};

}  // namespace nimbus::ike
