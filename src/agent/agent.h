// The pilus agent: owns the desired state (store), turns it into kernel state
// (endpoints, maps, programs) and answers the API. One mutex guards the state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent_config.h"
#include "agent/endpoint_index.h"
#include "datapath/datapath.h"
#include "datapath/kernel_features.h"
#include "endpoint/cgroup.h"
#include "endpoint/endpoint.h"
#include "endpoint/ipam.h"
#include "identity/identity_allocator.h"
#include "manifest/document.h"
#include "manifest/object.h"
#include "observe/event_reader.h"
#include "observe/flow_decoder.h"
#include "observe/flow_ring.h"
#include "policy/policy_resolver.h"
#include "policy/policy_rule.h"
#include "proxy/http_metrics.h"
#include "proxy/http_proxy.h"
#include "store/file_store.h"

namespace pilus::agent {

class Agent {
 public:
  // Checks privileges and kernel features, loads (or adopts) the datapath and
  // restores every endpoint recorded in the store, without disturbing traffic.
  explicit Agent(AgentConfig config);
  ~Agent();

  // Applies manifests all or nothing; returns what changed, per object.
  nlohmann::json apply(const std::vector<manifest::Source>& sources);
  nlohmann::json remove(const std::vector<manifest::Source>& sources);

  nlohmann::json pods() const;
  nlohmann::json endpoints() const;
  nlohmann::json identities() const;
  nlohmann::json namespaces() const;
  nlohmann::json status() const;
  nlohmann::json bpf_conntrack() const;
  nlohmann::json bpf_ipcache() const;
  nlohmann::json bpf_endpoints() const;
  nlohmann::json policies() const;
  nlohmann::json bpf_policy(const std::string& pod) const;
  // Verdict for a packet from a pod to a pod ("ns/name") or an address, as the datapath decides it.
  nlohmann::json policy_trace(const std::string& from, const std::string& to, uint16_t port,
                              const std::string& protocol) const;

  // Prometheus text for /metrics (agent_metrics.cpp).
  std::string metrics_text() const;
  uint64_t lost_events() const;

  // Deletes expired conntrack entries; returns how many.
  size_t conntrack_gc();

  const AgentConfig& config() const { return config_; }

  // Flows decoded from the datapath's events (the observer).
  const observe::FlowRing& flows() const { return *flow_ring_; }
  observe::FlowRing& flows() { return *flow_ring_; }

 private:
  using Lock = std::lock_guard<std::mutex>;

  void restore();
  void sync_host_addresses();
  void remove_stale_map_entries();

  // Endpoint lifecycle (agent_endpoints.cpp); caller holds mutex_.
  endpoint::Endpoint create_endpoint(const manifest::Pod& pod);
  void adopt_endpoint(endpoint::Endpoint& ep, const manifest::Pod& pod);
  void destroy_endpoint(const endpoint::Endpoint& ep);
  void write_endpoint_maps(const endpoint::Endpoint& ep);
  void erase_endpoint_maps(const endpoint::Endpoint& ep);
  void relabel_endpoint(endpoint::Endpoint& ep);
  identity::LabelSet identity_labels(const manifest::Pod& pod) const;
  uint16_t allocate_endpoint_id() const;
  void save_pod(const manifest::Document& doc, const endpoint::Endpoint& ep);

  // Policy (agent_policy.cpp); caller holds mutex_.
  void regenerate_policy();
  uint16_t initial_policy_flags(const manifest::Pod& pod) const;
  policy::ResolverInput policy_input() const;

  // L7 proxy (agent_proxy.cpp).
  void start_proxy();
  void update_proxy_policy();  // caller holds mutex_
  nlohmann::json proxy_status() const;

  void maintenance_loop();
  void reap_pod_processes();

  AgentConfig config_;
  std::vector<datapath::KernelFeature> features_;
  store::FileStore store_;
  std::unique_ptr<datapath::Datapath> datapath_;
  std::unique_ptr<identity::IdentityAllocator> identities_;
  endpoint::Ipam ipam_;
  std::unique_ptr<endpoint::PodCgroup> cgroup_;

  mutable std::mutex mutex_;
  std::map<std::string, manifest::NamespaceObject> namespaces_;
  std::map<std::string, manifest::Document> namespace_docs_;
  struct PodState {
    manifest::Document doc;
    manifest::Pod pod;
    endpoint::Endpoint ep;
  };
  std::map<std::string, PodState> pods_;  // key: namespace/name
  struct PolicyState {
    manifest::Document doc;
    policy::ConvertedPolicy converted;
  };
  std::map<std::string, PolicyState> policies_;  // key: Kind/namespace/name
  std::vector<policy::PolicyRule> rules_;        // all policies' rules, as resolved
  policy::ResolvedPolicy resolved_;
  std::map<endpoint::Ipv4Prefix, uint32_t> cidr_identities_;
  std::vector<endpoint::Ipv4> host_ips_;

  EndpointIndex endpoint_index_;
  std::unique_ptr<observe::FlowDecoder> flow_decoder_;
  std::unique_ptr<observe::FlowRing> flow_ring_;
  std::unique_ptr<observe::EventReader> event_reader_;

  std::unique_ptr<proxy::HttpProxy> proxy_;
  proxy::HttpMetrics http_metrics_;

  std::atomic<size_t> ct_gc_deleted_{0};
  std::atomic<uint64_t> ct_gc_runs_{0};
  std::chrono::steady_clock::time_point started_;
  bool restored_datapath_ = false;

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread maintenance_;
};

}  // namespace pilus::agent
