#include "agent/agent.h"
#include "agent/batch_scope.h"
#include "agent/pod_networks.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "datapath/host_network.h"
#include "endpoint/ipv4.h"
#include "policy/policy_conversion.h"
#include "service/maglev.h"
#include "store/state_dir.h"

namespace pilus::agent {
namespace fs = std::filesystem;

namespace {

std::unique_ptr<datapath::Datapath> load_datapath(const AgentConfig& c) {
  datapath::DatapathConfig dc;
  dc.bpf_root = c.bpf_root;
  dc.ct_max = c.ct_max;
  dc.policy_max = c.policy_max;
  dc.events_ring_bytes = c.event_buffer_bytes;
  dc.maglev_size = c.maglev_size;
  dc.lb_random = c.lb_algorithm == "random";
  dc.lb_max_services = c.lb_max_services;
  return std::make_unique<datapath::Datapath>(dc);
}

std::vector<datapath::KernelFeature> checked_features() {
  datapath::require_privileges();
  auto features = datapath::probe_kernel_features();
  datapath::require_kernel_features(features);
  return features;
}

}  // namespace

Agent::Agent(AgentConfig config)
    : config_(std::move(config)),
      features_(checked_features()),
      store_(store::open_state_store(config_.state_dir)),
      store_writer_(*store_),
      ipam_(config_.pod_cidr) {
  started_ = std::chrono::steady_clock::now();
  const endpoint::Ipam vips(config_.service_cidr);  // checked here; the service controller allocates from it
  // A restarted agent must run with the settings its endpoints were made with.
  if (auto saved = store_->get("config", "agent")) {
    AgentConfig old = config_from_json(*saved);
    if (old.pod_cidr != config_.pod_cidr)
      fail("the state in {} was created with --pod-cidr {}; run `pilus cleanup` before changing it",
           config_.state_dir, old.pod_cidr);
  }
  if (!service::is_prime(config_.maglev_size) || config_.maglev_size > 65521)
    fail("--maglev-table-size {}: must be a prime number up to 65521 (e.g. 251, 1021, 16381)", config_.maglev_size);
  if (config_.lb_max_services < 2 || uint64_t(config_.lb_max_services) * config_.maglev_size > (1ULL << 28))
    fail("--lb-max-services {}: must be at least 2, and times --maglev-table-size at most 2^28 slots",
         config_.lb_max_services);
  if (config_.lb_algorithm != "maglev" && config_.lb_algorithm != "random")
    fail("--lb-algorithm \"{}\": must be maglev or random", config_.lb_algorithm);
  if (ipam_.contains(vips.router_ip()) || vips.contains(ipam_.router_ip()))
    fail("--service-cidr {} overlaps the pod CIDR {}", vips.cidr(), ipam_.cidr());
  store_->put("config", "agent", to_json(config_));
  fs::create_directories(config_.state_dir + "/logs");

  datapath_ = load_datapath(config_);
  restored_datapath_ = datapath_->reused_pinned_maps();
  ipcache_ = std::make_unique<datapath::IpcacheMap>(*datapath_);
  endpoint_map_ = std::make_unique<datapath::EndpointMap>(*datapath_);
  conntrack_ = std::make_unique<datapath::ConntrackMap>(*datapath_);
  proxy_maps_ = std::make_unique<datapath::ProxyMaps>(*datapath_);
  identities_ = std::make_unique<identity::IdentityAllocator>(*store_);
  cgroup_ = std::make_unique<endpoint::PodCgroup>(config_.cgroup);
  policy_controller_ = std::make_unique<controller::PolicyController>(*datapath_, *identities_, store_writer_);
  service_controller_ = std::make_unique<controller::ServiceController>(*datapath_, config_.service_cidr, store_writer_);
  sock_lb_ = std::make_unique<datapath::SocketLoadBalancer>(*datapath_, cgroup_->path());
  datapath::ensure_host_device(config_.host_device, endpoint::to_string(ipam_.router_ip()), ipam_.cidr());

  if (config_.node_name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    config_.node_name = host;
  }
  flow_decoder_ = std::make_unique<observe::FlowDecoder>(endpoint_index_, config_.node_name);
  flow_ring_ = std::make_unique<observe::FlowRing>(config_.flow_buffer);
  start_proxy();  // before restore(): policy entries name the proxy's port
  restore();
  // After restore: the index knows every endpoint before the first event is decoded.
  event_reader_ = std::make_unique<observe::EventReader>(datapath_->events_fd(), datapath_->events_lost_fd(),
                                                         *flow_decoder_, *flow_ring_);
  event_reader_->on_flow([this](const observe::Flow& f) { flow_metrics_.observe(f); });
  if (config_.enable_hubble) event_reader_->start();
  maintenance_ = std::thread([this] { maintenance_loop(); });
  spdlog::info("agent ready: {} endpoints, pod CIDR {}, datapath {}", pods_.size(), ipam_.cidr(),
               restored_datapath_ ? "adopted from pins" : "freshly loaded");
}

Agent::~Agent() {
  {
    std::lock_guard<std::mutex> l(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  proxy_.reset();
  flow_ring_->close();
  if (event_reader_) event_reader_->stop();
  // Programs stay attached and maps stay pinned: traffic keeps flowing.
}

void Agent::restore() {
  Lock lock(mutex_);
  for (auto& [name, body] : store_->list("namespaces")) {
    manifest::Document doc = manifest::document_from_json(body, "store");
    namespaces_[name] = std::get<manifest::NamespaceObject>(manifest::parse_object(doc));
    namespace_docs_.emplace(name, doc);
  }
  restore_runtime_pods();
  // Policies first: an adopted pod starts from the default deny they put it in.
  policy_controller_->restore(*store_);
  {
    store::WriteBatch writes;  // the adopted pods' updated endpoints, saved together
    BatchScope batch_scope(store_writer_.batch_slot(), writes);
    for (auto& [key, body] : store_->list("pods")) {
      manifest::Document doc = manifest::document_from_json(body.at("manifest"), "store");
      manifest::Pod pod = std::get<manifest::Pod>(manifest::parse_object(doc));
      endpoint::Endpoint ep = endpoint::endpoint_from_json(body.at("endpoint"));
      try {
        adopt_endpoint(ep, pod);
        pods_.insert_or_assign(key, PodState{doc, pod, ep});
        save_pod(doc, ep);
        store_put(kPodNetworks, key, PodNetwork{ep.netns, ep.host_if});  // pods of earlier versions had none
      } catch (const std::exception& e) {
        spdlog::error("cannot restore pod {}: {}", key, e.what());
        throw;
      }
    }
    store_->commit(writes);
  }
  // What an apply or delete killed part way left in the kernel for pods the store does not hold.
  remove_orphans(*store_, cgroup_->path());
  service_controller_->restore(*store_);
  sync_host_addresses();
  regenerate_policy();
  sync_services();
  identities_->release_unused();
  remove_stale_map_entries();
}

// Every IPv4 address of the node is "host" in the ipcache: pods may reach
// them, and only them, outside the pod network.
void Agent::sync_host_addresses() {
  std::set<endpoint::Ipv4> host_ips = {ipam_.router_ip()};
  ifaddrs* addrs = nullptr;
  if (getifaddrs(&addrs) == 0) {
    for (ifaddrs* a = addrs; a; a = a->ifa_next) {
      if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
      endpoint::Ipv4 ip{ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr)};
      if ((ip.value >> 24) == 127 || ipam_.contains(ip)) continue;
      host_ips.insert(ip);
    }
    freeifaddrs(addrs);
  }
  ipcache_->sync_host(host_ips);
  host_ips_.assign(host_ips.begin(), host_ips.end());
}

// After a restart: entries for endpoints that no longer exist are removed one
// by one; the live ones were rewritten in place, never flushed.
void Agent::remove_stale_map_entries() {
  std::set<endpoint::Ipv4> live;
  for (const auto& [key, st] : pods_) live.insert(st.ep.ip);
  endpoint_map_->remove_except(live);
  ipcache_->remove_pods_except(live);
}

size_t Agent::conntrack_gc() {
  size_t deleted = conntrack_->gc();
  ct_gc_deleted_ += deleted;
  ct_gc_runs_++;
  return deleted;
}

void Agent::reap_pod_processes() {
  Lock lock(mutex_);
  bool exited = false;
  for (auto& [key, st] : pods_) {
    if (st.ep.process.pid == 0 || st.ep.exit_code) continue;
    if (auto code = endpoint::reap_child(st.ep.process.pid)) {
      st.ep.exit_code = code;
      save_pod(st.doc, st.ep);
      spdlog::info("pod {}: command exited with code {}", key, *code);
      exited = true;
    }
  }
  if (exited) sync_services();  // a pod whose command ended no longer serves
}

void Agent::maintenance_loop() {
  auto next_gc = std::chrono::steady_clock::now() + std::chrono::seconds(config_.ct_gc_interval_s);
  std::unique_lock<std::mutex> l(stop_mutex_);
  while (!stopping_) {
    stop_cv_.wait_for(l, std::chrono::milliseconds(500));
    if (stopping_) break;
    l.unlock();
    try {
      reap_pod_processes();
      if (std::chrono::steady_clock::now() >= next_gc) {
        size_t n = conntrack_gc();
        if (n) spdlog::debug("conntrack gc: {} expired entries deleted", n);
        next_gc = std::chrono::steady_clock::now() + std::chrono::seconds(config_.ct_gc_interval_s);
      }
    } catch (const std::exception& e) {
      spdlog::warn("maintenance: {}", e.what());
    }
    l.lock();
  }
}

}  // namespace pilus::agent
