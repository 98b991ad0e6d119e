// The agent's settings. Saved in the state dir so that `pilus cleanup` knows
// what a (possibly dead) agent created.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace pilus::agent {

struct AgentConfig {
  std::string state_dir = "/var/lib/pilus";
  std::string socket = "/run/pilus/pilus.sock";
  std::string pod_cidr = "10.244.0.0/24";
  std::string bpf_root = "/sys/fs/bpf/pilus";
  std::string host_device = "pilus_host";  // dummy link holding the node's pod-side address
  std::string cgroup = "pilus";             // under the cgroup2 mount
  std::string metrics_addr = "127.0.0.1:9962";
  uint32_t ct_max = 65536;
  uint32_t policy_max = 65536;              // policy map entries, all endpoints together
  uint32_t event_buffer_bytes = 4u << 20;   // the datapath's events ring buffer
  uint32_t ct_gc_interval_s = 10;
  uint32_t flow_buffer = 4096;  // flows kept for `pilus observe`
  std::string node_name;        // shown in flows; default: the host name
  std::string service_cidr = "10.96.0.0/16";  // service VIPs (ClusterIP)
  uint32_t maglev_size = 1021;                // prime; Maglev slots per service port
  std::string lb_algorithm = "maglev";        // or "random"
  uint32_t lb_max_services = 1024;            // service ports (VIP, port, protocol) the LB maps hold
  // API and metrics servers (not saved: they only shape this run).
  uint32_t api_max_connections = 256;
  uint32_t metrics_max_connections = 64;
  uint32_t api_header_timeout_s = 10;
  uint32_t api_idle_timeout_s = 30;
  uint64_t api_max_request_bytes = 64ull << 20;
  uint32_t proxy_max_connections = 4096;              // L7 proxy client connections, all pods together
  uint32_t proxy_max_connections_per_identity = 512;  // one client identity's share of them
  bool enable_hubble = true;  // false: no event reader (events stay in the ring, then count as lost)
};

nlohmann::json to_json(const AgentConfig& c);
AgentConfig config_from_json(const nlohmann::json& j);

}  // namespace pilus::agent
