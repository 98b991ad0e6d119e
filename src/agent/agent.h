// The pilus agent: owns the desired state (store), turns it into kernel state
// (endpoints, maps, programs) and answers the API. One mutex guards the state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent_config.h"
#include "agent/endpoint_index.h"
#include "api/v1/apply.h"
#include "api/v1/bpf_maps.h"
#include "api/v1/endpoints.h"
#include "api/v1/identities.h"
#include "api/v1/namespaces.h"
#include "api/v1/pods.h"
#include "api/v1/policies.h"
#include "api/v1/services.h"
#include "api/v1/status.h"
#include "api/v1/trace.h"
#include "controller/policy_controller.h"
#include "controller/service_controller.h"
#include "controller/store_writer.h"
#include "datapath/conntrack_map.h"
#include "datapath/datapath.h"
#include "datapath/endpoint_map.h"
#include "datapath/ipcache_map.h"
#include "datapath/proxy_maps.h"
#include "datapath/kernel_features.h"
#include "datapath/sock_lb.h"
#include "endpoint/cgroup.h"
#include "endpoint/endpoint.h"
#include "endpoint/ipam.h"
#include "identity/identity_allocator.h"
#include "manifest/document.h"
#include "manifest/object.h"
#include "observe/event_reader.h"
#include "observe/flow_decoder.h"
#include "observe/flow_metrics.h"
#include "observe/flow_ring.h"
#include "policy/policy_resolver.h"
#include "policy/policy_rule.h"
#include "service/service_maps.h"
#include "proxy/http_metrics.h"
#include "proxy/http_proxy.h"
#include "store/store.h"

namespace pilus::agent {

class Agent {
 public:
  // Checks privileges and kernel features, loads (or adopts) the datapath and
  // restores every endpoint recorded in the store, without disturbing traffic.
  explicit Agent(AgentConfig config);
  ~Agent();

  // Applies manifests all or nothing; returns what changed, per object, and "warnings" (fields
  // accepted without effect). The sources' text is released once parsed (a manifest can be tens
  // of MB). dry_run: validates and plans against the live state and returns what would change,
  // changing nothing (no store write, no kernel change).
  api::v1::ApplyResponse apply(std::vector<manifest::Source> sources, bool dry_run = false);
  api::v1::DeleteResponse remove(const std::vector<manifest::Source>& sources);

  api::v1::PodList pods() const;
  api::v1::EndpointList endpoints() const;
  api::v1::IdentityList identities() const;
  api::v1::NamespaceList namespaces() const;
  api::v1::Status status() const;
  // {"items": [...]} written piece by piece; stops early when write returns false.
  void bpf_conntrack(const std::function<bool(std::string_view)>& write) const;
  api::v1::IpcacheList bpf_ipcache() const;
  api::v1::BpfEndpoints bpf_endpoints() const;
  api::v1::PolicyList policies() const;
  api::v1::ServiceList services() const;
  api::v1::BpfLb bpf_lb() const;
  api::v1::BpfPolicy bpf_policy(const std::string& pod) const;
  // Verdict for a packet from a pod to a pod ("ns/name") or an address, as the datapath decides it.
  // One end of a policy trace: a pod ("ns/name") or an address in `name`, or, when `labels` is
  // not empty, a pod that does not exist with these labels in namespace `ns`.
  struct TraceSide {
    std::string name;
    std::string ns;
    std::map<std::string, std::string> labels;
  };
  api::v1::PolicyTrace policy_trace(const TraceSide& from, const TraceSide& to, uint16_t port,
                              const std::string& protocol) const;

  // Containers of a runtime, through pilus-cni (agent_cni.cpp). ADD creates the endpoint in the
  // runtime's netns (the same result again for the same container), DEL removes it (unknown: no
  // error), CHECK verifies it; GC removes the runtime endpoints whose container is not listed.
  struct CniRequest {
    std::string container_id, netns_path, if_name, ns, name;
    std::map<std::string, std::string> labels;  // the container's own
  };
  nlohmann::json cni_add(const CniRequest& r);
  void cni_del(const CniRequest& r);
  nlohmann::json cni_check(const CniRequest& r);
  nlohmann::json cni_gc(const std::set<std::string>& valid_container_ids);

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

  using AddUndoStep = std::function<void(std::function<void()>)>;
  // Endpoint lifecycle (agent_endpoints.cpp); caller holds mutex_.
  endpoint::ProcessSpec process_spec(const manifest::Pod& pod, const endpoint::Endpoint& ep) const;
  endpoint::Endpoint create_endpoint(const manifest::Pod& pod);
  void adopt_endpoint(endpoint::Endpoint& ep, const manifest::Pod& pod);
  void destroy_endpoint(const endpoint::Endpoint& ep);
  void write_endpoint_maps(const endpoint::Endpoint& ep);
  void erase_endpoint_maps(const endpoint::Endpoint& ep);
  void relabel_endpoint(endpoint::Endpoint& ep);
  identity::LabelSet identity_labels(const manifest::Pod& pod) const;
  uint16_t allocate_endpoint_id() const;
  void save_pod(const manifest::Document& doc, const endpoint::Endpoint& ep);

  // Runtime containers and the Pod objects that declare their labels (agent_cni.cpp); caller holds mutex_.
  bool apply_runtime_pod(const manifest::Document& doc, const manifest::Pod& pod, std::vector<api::v1::ObjectResult>& results,
                         const AddUndoStep& add_undo);
  bool delete_runtime_pod(const std::string& key, std::vector<api::v1::ObjectResult>& results);
  void restore_runtime_pods();
  nlohmann::json cni_result(const endpoint::Endpoint& ep) const;
  void remove_runtime_endpoint(const std::string& key);

  // Policy (agent_policy.cpp); caller holds mutex_.
  void regenerate_policy();
  policy::ResolverInput policy_input() const;

  // What apply would do to each object, from the current state (agent_dry_run.cpp); caller holds mutex_.
  std::vector<api::v1::ObjectResult> dry_run_results(const std::vector<std::pair<manifest::Document, manifest::Object>>& objects) const;

  // Services (agent_services.cpp): the pods as service backends; caller holds mutex_.
  void sync_services();
  // L7 proxy (agent_proxy.cpp).
  void start_proxy();
  void update_proxy_policy();  // caller holds mutex_
  api::v1::ProxyStatus proxy_status() const;

  // Store writes (agent_store.cpp): into the batch of the apply, delete or restore in progress
  // (store_writer_), straight to disk otherwise. Caller holds mutex_.
  void store_put(const std::string& collection, const std::string& key, const nlohmann::json& value);
  void store_erase(const std::string& collection, const std::string& key);

  void maintenance_loop();
  void reap_pod_processes();

  AgentConfig config_;
  std::vector<datapath::KernelFeature> features_;
  std::unique_ptr<store::Store> store_;
  controller::StoreWriter store_writer_;
  std::unique_ptr<datapath::Datapath> datapath_;
  // The one writer of each map (policy and policy_cidrs: policy_controller_'s; lb_*: service_controller_'s).
  std::unique_ptr<datapath::IpcacheMap> ipcache_;
  std::unique_ptr<datapath::EndpointMap> endpoint_map_;
  std::unique_ptr<datapath::ConntrackMap> conntrack_;
  std::unique_ptr<datapath::ProxyMaps> proxy_maps_;
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
    bool leaving = false;  // being deleted: no longer a service backend
  };
  std::map<std::string, PodState> pods_;  // key: namespace/name
  std::map<std::string, manifest::Document> runtime_pod_docs_;  // Pods of runtimeClassName pilus-cni; key: namespace/name
  std::map<std::string, endpoint::Ipv4> runtime_last_ip_;  // container id -> its address before its last DEL
  std::unique_ptr<controller::PolicyController> policy_controller_;
  std::vector<endpoint::Ipv4> host_ips_;
  std::unique_ptr<controller::ServiceController> service_controller_;
  std::unique_ptr<datapath::SocketLoadBalancer> sock_lb_;

  EndpointIndex endpoint_index_;
  std::unique_ptr<observe::FlowDecoder> flow_decoder_;
  std::unique_ptr<observe::FlowRing> flow_ring_;
  observe::FlowMetrics flow_metrics_;
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
