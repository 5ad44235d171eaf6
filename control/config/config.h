// The configuration model: what the YAML file says, validated. Parsing and
// validation live in config.cpp; each later feature adds its section here and
// its checks there. Every object remembers where it came from in the file so
// that later failures (a port that cannot start) can point at the line.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/config/routing.h"
#include "src/common/addr.h"

namespace nimbus::config {

class Tree;  // tree.h

struct Where {
    int line = 0;  // 1-based; 0 = not from a file
    int col = 0;
    bool operator==(const Where&) const { return true; }  // positions never make configs differ
};

enum class Role { Concentrator, Edge };

struct Node {
    std::string name;
    Role role = Role::Concentrator;
    bool operator==(const Node&) const = default;
};

// Punt policer for one class of exception traffic: packets per second and
// burst, per worker.
struct PuntRate {
    uint32_t pps = 0;
    uint32_t burst = 0;
    bool operator==(const PuntRate&) const = default;
};

// Punt classes, in priority order: VRRP and BGP first, so an IKE storm can
// never starve HA adverts or BGP keepalives. Kept in step with
// dataplane/api.h (PuntClass).
inline constexpr const char* kPuntClassNames[] = {"vrrp", "bgp", "arp_nd", "ike", "icmp", "other"};
inline constexpr int kPuntClasses = 6;

struct Dataplane {
    int workers = 1;
    int idle_sleep_us = 50;
    std::vector<std::string> eal;
    int mbufs = 16383;
    int rx_burst = 32;
    int ipv4_tbl8 = 4096;     // rte_lpm tbl8 groups per VRF (each 1 KiB)
    int ipv6_routes = 65536;  // rte_fib6 capacity per VRF
    int ipv6_tbl8 = 8192;     // rte_fib6 tbl8 groups per VRF (each 1 KiB, two copies)
    int reassembly_flows = 1024;      // outer fragments (ESP, IKE): packets in flight per worker
    int reassembly_timeout_ms = 1000;  // ... and how long a partial packet is kept
    int firewall_flows = 65536;        // firewall flow entries per worker (allow-stateful)
    // vrrp, bgp, arp_nd, ike, icmp, other. IKE's burst takes one liveness
    // check or reconnect from each of thousands of sites arriving together
    // (after a restart their DPD timers start in step); the IKE engine's
    // own defences (cookies, half-open limits, the work queue) sit behind it.
    PuntRate punt[kPuntClasses] = {
        {5000, 500}, {10000, 1000}, {5000, 500}, {10000, 5000}, {2000, 200}, {2000, 200}};
    bool operator==(const Dataplane&) const = default;
};

struct Api {
    std::string listen;  // "ADDR:PORT"; empty: no HTTPS API
    std::string cert, key, client_ca;
    std::vector<std::string> admins, readers;  // client certificate CNs
    bool operator==(const Api&) const = default;
};

struct Mgmt {
    std::string socket = "/run/nimbus/nimbusd.sock";
    std::string log_level = "info";
    std::string state_dir;       // audit log, config history; default /var/lib/nimbus/<node>
    Api api;
    std::string metrics_listen;  // plain-HTTP /metrics on "ADDR:PORT"
    int history = 20;            // configs kept for `config rollback N`
    // Per-tunnel series (nimbus_tunnel_up{cloud,site} ...): "on", "off", or
    // "auto" = on while there are at most per_tunnel_limit tunnels; per-cloud
    // series are always there (bounded cardinality at 100k tunnels).
    std::string metrics_per_tunnel = "auto";
    int metrics_per_tunnel_limit = 1000;
    // `show alarms`: certificates expiring within cert_expiry_days, CRLs
    // whose nextUpdate is within crl_expiry_hours (or passed).
    int alarm_cert_days = 30;
    int alarm_crl_hours = 24;
    bool operator==(const Mgmt&) const = default;
};

struct Vrf {
    std::string name;
    Where where;
    bool operator==(const Vrf&) const = default;
};

struct Port {
    std::string name;    // also the name of its host interface (TAP)
    std::string device;  // PCI address or vdev string ("net_af_packet0,iface=veth0")
    std::string vrf = "default";
    std::vector<IfAddr> addresses;
    int mtu = 1500;
    Where where;
    bool is_pci() const;
    std::string device_name() const;  // "net_af_packet0" or the PCI address
    std::string device_arg(const std::string& key) const;  // "iface" -> "veth0"
    bool operator==(const Port&) const = default;
};

struct Route {
    std::string vrf = "default";
    Prefix prefix;
    std::optional<IpAddr> via;
    std::string port;  // optional egress port
    bool blackhole = false;
    int distance = 1;
    Where where;
    bool operator==(const Route&) const = default;
};

// ---- IKE clouds, sites and the IKE engine (control/config/clouds.cpp)

// A secret from the config (pre-shared keys). Compares like a string but
// never formats: there is no way to print it by accident.
struct SecretText {
    std::string value;
    bool empty() const { return value.empty(); }
    bool operator==(const SecretText&) const = default;
};

struct PkiFiles {
    std::string ca, crl, cert, key;  // crl may be empty
    Where where;
    bool operator==(const PkiFiles&) const = default;
};

struct Dpd {
    int interval = 10;  // seconds between liveness checks
    int retries = 3;    // a peer silent for interval × retries is dead
    bool operator==(const Dpd&) const = default;
};

struct Site {
    std::string id;                // as written ("CN=store-0001", "site1.example", ...)
    std::vector<Prefix> prefixes;  // what the site may hold (its TSi)
    SecretText psk;                // optional, overrides the cloud's
    std::vector<int> critical_dscp;
    Where where;
    bool operator==(const Site&) const = default;
};

struct Cloud {
    std::string name;
    std::string vrf = "default";
    std::optional<PkiFiles> pki;
    SecretText psk;
    std::string id;  // our identity towards this cloud's sites (optional)
    std::vector<std::string> ike_proposals{"aes256gcm16-prfsha256-x25519"};
    std::vector<std::string> esp_proposals{"aes256gcm16"};
    std::vector<Prefix> advertise;  // offered to sites as our TS
    Dpd dpd;
    int rekey_ike = 14400;   // seconds
    int rekey_child = 3600;  // seconds
    std::vector<Site> sites;
    Where where;
    bool operator==(const Cloud&) const = default;
};

struct Ike {
    std::vector<std::string> listen;  // addresses or port names; empty = every address
    int port_ike = 500;
    int port_natt = 4500;
    int cookie_threshold = 500;      // half-open SAs before COOKIEs are demanded
    int half_open_per_source = 50;   // half-open SAs from one address
    int max_half_open = 20000;       // half-open SAs in all (a memory bound)
    int fragment_size = 1280;        // largest IP packet for an IKE message (RFC 7383)
    int retransmit_timeout_ms = 1000;
    int retransmit_tries = 5;
    int keepalive_s = 20;            // NAT keepalives when we are behind a NAT (RFC 3948 §4)
    // Graceful stop (SIGTERM): every IKE SA is deleted (RFC 7296 §1.4.1) and
    // nimbusd waits up to this long for the answers; 0: no DELETEs, the
    // sites find out by their dead-peer detection.
    int delete_on_stop_ms = 1000;
    Where where;
    bool operator==(const Ike&) const = default;
};

struct Initiate {
    IpAddr peer;
    std::string cloud;
    std::string local_id;                 // default: the certificate's subject
    std::string remote_id;                // optional: the peer must prove this identity
    std::vector<Prefix> local_prefixes;   // our TSi
    std::vector<Prefix> remote_prefixes;  // our TSr proposal (default: 0.0.0.0/0 and ::/0)
    Where where;
    bool operator==(const Initiate&) const = default;
};

// A secret byte string (ESP keying material): compared like bytes, wiped
// when it goes, never printed.
struct Secret {
    std::vector<uint8_t> bytes;
    Secret() = default;
    Secret(const Secret&) = default;
    Secret& operator=(const Secret&) = default;
    ~Secret();
    bool operator==(const Secret&) const = default;
};

// One static (manual) SA: the SPI and key || salt.
struct ManualSaKey {
    uint32_t spi = 0;
    Secret key;
    Where where;
    bool operator==(const ManualSaKey&) const = default;
};

struct TunnelPath {
    IpAddr local, remote;
    int port = 4500;  // the peer's UDP port (ours is 4500)
    Where where;
    bool operator==(const TunnelPath&) const = default;
};

// `manual_sas:` one entry per tunnel (peer site), static keys, until IKE.
struct ManualTunnel {
    std::string name;
    std::string vrf = "default";           // inner VRF
    std::string underlay_vrf = "default";  // outer packets
    std::string cipher;                    // aes128gcm16 | aes256gcm16 | chacha20poly1305
    bool esn = false;
    bool udp = true;  // encap: udp (RFC 3948) | esp
    int replay_window = 1024;
    int mtu = 0;  // 0: derived from the path MTU
    bool mss_clamp = true;
    uint64_t critical_dscp = 0;  // bit per DSCP value
    std::vector<Prefix> allowed;
    std::vector<TunnelPath> paths;
    ManualSaKey out;
    std::vector<ManualSaKey> in;
    uint64_t soft_bytes = 0, hard_bytes = 0, soft_packets = 0, hard_packets = 0;
    Where where;
    bool operator==(const ManualTunnel&) const = default;
};

// Cipher name -> keymat length (key || salt), 0 if unknown.
size_t cipher_keymat_len(const std::string& cipher);

// High availability (control/ha): one VRRPv3 sync group with one instance
// per listed interface (and per address family present among its virtual
// IPs), all sharing vrid/priority/preempt. Read by control/config/ha.cpp.
struct HaTrack {
    std::string port;   // a port whose link is tracked (or empty, and frr below)
    int weight = 0;     // priority drop while down (1..254), or
    bool fault = false; // down forces backup
    Where where;
    std::string frr;    // an FRR session instead of a port: "zebra" (nimbus's ZAPI session, needs routing.zebra)
    bool operator==(const HaTrack&) const = default;
};

struct HaGarp {
    int repeat = 3;      // gratuitous ARPs / unsolicited NAs per address at takeover
    int delay_ms = 1000; // ... and as many again this long after (0: no second burst)
    int refresh_s = 0;   // then one every refresh_s seconds while master (0: never)
    bool operator==(const HaGarp&) const = default;
};

struct Ha {
    int vrid = 0;
    int priority = 100;            // 1..255; 255 = address owner (RFC 5798 §5.2.4)
    bool preempt = true;
    int preempt_delay_ms = 0;
    int advert_interval_ms = 100;  // a multiple of 10 (centiseconds on the wire)
    std::vector<std::string> interfaces;
    std::vector<IfAddr> virtual_ips;
    std::vector<HaTrack> track;
    HaGarp garp;
    Where where;
    bool operator==(const Ha&) const = default;
};

// `firewall:` (control/config/firewall.cpp, dataplane/acl): per VRF, rules
// for traffic leaving its tunnels (ingress) and entering them (egress).
struct FwRule {
    std::string name;    // optional; shown with the counters
    std::string action;  // allow | deny | allow-stateful
    int family = 0;      // 0 any, 4, 6 (from `family:` or the prefixes)
    int proto = -1;      // -1 any; from a name (tcp, udp, icmp, ipv6-icmp, ...) or number
    std::vector<Prefix> src, dst;
    bool ports = false;
    int sport_lo = 0, sport_hi = 65535, dport_lo = 0, dport_hi = 65535;
    uint64_t dscp = 0;   // bit per DSCP value; 0 any
    Where where;
    // What identifies the rule across applies (its counters stay with it).
    std::string identity() const;
    std::string match_str() const;  // "tcp 10.0.0.0/8 -> any dport 22"
    bool operator==(const FwRule&) const = default;
};

struct Firewall {
    std::string vrf = "default";
    std::string cloud;  // when given as `cloud:` (its VRF)
    std::string ingress_default = "allow", egress_default = "allow";
    int state_timeout = 300;  // seconds a stateful flow lives without packets
    std::vector<FwRule> ingress, egress;
    Where where;
    bool operator==(const Firewall&) const = default;
};

struct Config {
    std::string file;  // where it was read from
    Node node;
    Dataplane dataplane;
    Mgmt mgmt;
    std::vector<Vrf> vrfs;  // always starts with "default"
    std::vector<Port> ports;
    std::vector<Route> routes;
    std::vector<Cloud> clouds;
    Ike ike;
    std::vector<Initiate> initiate;
    std::vector<ManualTunnel> manual_sas;
    std::optional<Ha> ha;
    std::optional<Routing> routing;  // FRR integration (routing.h); absent = none
    std::vector<Firewall> firewall;

    const Cloud* cloud(const std::string& name) const;
    const Port* port(const std::string& name) const;
    const Vrf* vrf(const std::string& name) const;
    int vrf_index(const std::string& name) const;  // -1 if unknown
    bool operator==(const Config&) const = default;
};

struct Result {
    std::optional<Config> config;
    std::vector<std::string> errors;  // "file:line:col: key.path: message"
    // The document the config was read from, for diff() and redact()
    // (control/config/diff.h) without parsing the text again.
    std::shared_ptr<const Tree> tree;
    bool ok() const { return config.has_value() && errors.empty(); }
};

// Parses and validates. `name` is used in messages (normally the path).
Result parse(const std::string& yaml_text, const std::string& name);
Result load(const std::string& path);

}  // namespace nimbus::config
