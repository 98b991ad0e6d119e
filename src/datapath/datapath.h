// The loaded datapath: the pod programs and their maps, pinned under the BPF
// root so that they outlive the agent and are reused, never flushed, by the
// next one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "abi/conntrack.h"
#include "abi/endpoint.h"
#include "abi/events.h"
#include "abi/ipcache.h"
#include "abi/lb.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "abi/proxy.h"
#include "datapath/bpf_map.h"

struct pod_bpf;

namespace pilus::datapath {

struct DatapathConfig {
  std::string bpf_root = "/sys/fs/bpf/pilus";
  bool pin = true;  // false: private maps (BPF tests)
  uint32_t ct_max = CT_MAX_DEFAULT;
  uint32_t policy_max = POLICY_MAX_DEFAULT;          // entries of the one policy map (all endpoints)
  uint32_t events_ring_bytes = EVENTS_RING_BYTES;    // a power of two, at least a page
  uint32_t ct_lifetime_tcp = CT_LIFETIME_TCP;
  uint32_t ct_lifetime_nontcp = CT_LIFETIME_NONTCP;
  uint32_t maglev_size = LB_MAGLEV_SIZE_DEFAULT;  // prime; slots per service
  uint32_t lb_max_services = LB_SERVICES_MAX;      // (VIP, port, proto) entries and Maglev rows
  bool lb_random = false;                         // random backend instead of Maglev
};

struct MapPressure {
  std::string name;
  size_t entries = 0;
  size_t max_entries = 0;
};

// Raw handles, for reading and for the typed owners (ipcache_map.h, endpoint_map.h, policy_map.h,
// policy_cidr_map.h, conntrack_map.h, proxy_maps.h, service/service_maps.h), the only code that writes.
using IpcacheBpfMap = BpfMap<ipcache_key, ipcache_value>;
using EndpointsBpfMap = BpfMap<endpoint_key, endpoint_info>;
using ConntrackBpfMap = BpfMap<ct_key, ct_entry>;
using MetricsMap = PerCpuBpfMap<metrics_key, metrics_value>;
using PolicyBpfMap = BpfMap<policy_key, policy_entry>;
using LbServicesMap = BpfMap<lb_service_key, lb_service>;
using LbBackendsMap = BpfMap<uint32_t, lb_backend>;
using LbMaglevMap = BpfMap<uint32_t, uint32_t>;
using LbAffinityMap = BpfMap<lb_affinity_key, lb_affinity_value>;
using LbNatMap = BpfMap<lb_nat_key, lb_nat_value>;
using ProxyConfigMap = BpfMap<uint32_t, proxy_config>;
using ProxyFlowsMap = BpfMap<proxy_flow_key, proxy_flow>;
using ProxyOriginMap = BpfMap<proxy_origin_key, proxy_origin>;
using PolicyCidrsCountMap = BpfMap<uint32_t, uint32_t>;
using PolicyRevisionMap = BpfMap<uint32_t, uint32_t>;

class Datapath {
 public:
  explicit Datapath(DatapathConfig config);
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // True when the maps were found pinned (an earlier agent's), and reused.
  bool reused_pinned_maps() const { return reused_; }

  IpcacheBpfMap ipcache() const;
  EndpointsBpfMap endpoints() const;
  ConntrackBpfMap conntrack() const;
  MetricsMap metrics() const;
  PolicyBpfMap policy() const;
  IpcacheBpfMap policy_cidrs() const;  // CIDRs policies name -> CIDR identity
  // Prefixes in policy_cidrs at key 0; while it is 0 the datapath does not search the trie.
  PolicyCidrsCountMap policy_cidrs_count() const;
  size_t policy_max_entries() const;
  // The policy revision at key 0 (lib/policy.h): conntrack entries cache an allow for it.
  PolicyRevisionMap policy_revision() const;
  // After every batch of writes to what a verdict depends on (policy map, policy CIDRs,
  // endpoint flags, ipcache): established connections are judged again at their next packet.
  void bump_policy_revision() const;
  // Service load balancing maps, shared with the socket programs (sock_lb.h).
  LbServicesMap lb_services() const;
  LbBackendsMap lb_backends() const;
  LbMaglevMap lb_maglev() const;
  LbAffinityMap lb_affinity() const;
  LbNatMap lb_nat() const;
  uint32_t lb_max_services() const;
  ProxyConfigMap proxy_config() const;  // the L7 proxy's address (lib/proxy.h)
  ProxyFlowsMap proxy_flows() const;
  ProxyOriginMap proxy_origin() const;
  int events_fd() const;
  int events_lost_fd() const;

  int from_pod_fd() const;
  int to_pod_fd() const;

  // Attaches from_pod (tc ingress) and to_pod (tc egress) to the host side of
  // a pod veth, atomically replacing what an earlier agent attached there.
  void attach_to_pod_veth(int ifindex) const;

  std::vector<MapPressure> map_pressure() const;
  const DatapathConfig& config() const { return config_; }

  // Removes every pin under the BPF root (pilus cleanup).
  static void remove_pins(const std::string& bpf_root);

 private:
  DatapathConfig config_;
  pod_bpf* skel_ = nullptr;
  bool reused_ = false;
};

// Mounts bpffs at /sys/fs/bpf when nothing is mounted there.
void ensure_bpffs();

}  // namespace pilus::datapath
