// Read-only views of the agent's state for the API: pods, identities,
// status, and the raw BPF maps.
#include <arpa/inet.h>
#include <sys/utsname.h>

#include <fmt/format.h>

#include "agent/agent.h"
#include "datapath/drop_reason_names.h"
#include "endpoint/ipv4.h"

namespace pilus::agent {

namespace {

namespace v1 = api::v1;

std::string ip_be_to_string(uint32_t ip_be) { return endpoint::to_string(endpoint::Ipv4::from_network_order(ip_be)); }

std::string proto_name(uint8_t proto) {
  switch (proto) {
    case 6: return "TCP";
    case 17: return "UDP";
    case 1: return "ICMP";
    default: return std::to_string(proto);
  }
}

std::vector<std::string> label_strings(const identity::LabelSet& labels) {
  std::vector<std::string> out;
  for (const auto& l : labels) out.push_back(l.to_string());
  return out;
}

}  // namespace

v1::PodList Agent::pods() const {
  Lock lock(mutex_);
  auto list = v1::PodList::kube();
  for (const auto& [key, st] : pods_) {
    v1::Pod& pod = list.items.emplace_back();
    pod.metadata = {st.pod.name, st.pod.ns, st.pod.labels, st.pod.annotations};
    for (const auto& c : st.pod.containers) {
      v1::Container& container = pod.spec.containers.emplace_back();
      container.name = c.name;
      container.image = c.image;
      container.command = c.command;
      container.args = c.args;
      for (const auto& p : c.ports) container.ports.push_back({p.container_port, p.protocol, p.name});
    }
    pod.spec.node_name = config_.node_name;
    v1::PodStatus& status = pod.status;
    status.pod_ip = endpoint::to_string(st.ep.ip);
    status.pod_ips = {{status.pod_ip}};
    status.host_ip = endpoint::to_string(ipam_.router_ip());
    status.netns = st.ep.netns;
    status.identity = st.ep.identity;
    status.phase = st.ep.phase();
    status.host_interface = st.ep.host_if;
    status.endpoint_id = st.ep.id;
    status.pid = st.ep.process.pid;
    status.owner = st.ep.owner();
    if (st.ep.runtime) status.container_id = st.ep.runtime->id;
  }
  return list;
}

v1::EndpointList Agent::endpoints() const {
  Lock lock(mutex_);
  v1::EndpointList list;
  for (const auto& [key, st] : pods_) {
    std::vector<std::string> labels;
    if (const auto* set = identities_->labels_of(st.ep.identity)) labels = label_strings(*set);
    list.items.push_back({st.ep.id, key, endpoint::to_string(st.ep.ip), st.ep.identity, std::move(labels),
                          st.ep.host_if, st.ep.ifindex, st.ep.netns, st.ep.ifindex ? "ready" : "not-ready"});
  }
  return list;
}

v1::IdentityList Agent::identities() const {
  v1::IdentityList list;
  for (const auto& info : identities_->list())
    list.items.push_back({info.id, label_strings(info.labels), info.refcount, info.reserved});
  return list;
}

v1::NamespaceList Agent::namespaces() const {
  Lock lock(mutex_);
  auto list = v1::NamespaceList::kube();
  auto item = [](const std::string& name, const std::map<std::string, std::string>& labels) {
    v1::Namespace ns;
    ns.metadata.name = name;
    ns.metadata.labels = labels;
    return ns;
  };
  list.items.push_back(item("default", {}));
  for (const auto& [name, ns] : namespaces_) {
    if (name == "default") list.items.erase(list.items.begin());
    list.items.push_back(item(name, ns.labels));
  }
  return list;
}

v1::Status Agent::status() const {
  v1::Status s;
  for (const auto& f : features_) s.kernel_features.push_back({f.name, f.required, f.available});
  for (const auto& m : datapath_->map_pressure())
    s.maps.push_back({m.name, m.entries, m.max_entries, m.max_entries ? double(m.entries) / double(m.max_entries) : 0.0});
  utsname u{};
  uname(&u);
  size_t l7_rules = 0;
  std::string policy_refusal;
  {
    Lock lock(mutex_);
    s.policy_map.entries = policy_controller_->resolved().entries.size();
    policy_refusal = policy_controller_->refusal();
    s.endpoints = pods_.size();
    s.policies = policy_controller_->desired().size();
    for (const auto& r : policy_controller_->rules())
      if (!r.http.empty()) l7_rules++;
  }
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  s.kernel = u.release;
  s.uptime_seconds = uptime.count();
  s.pod_cidr = ipam_.cidr();
  s.router_ip = endpoint::to_string(ipam_.router_ip());
  s.bpf_root = config_.bpf_root;
  s.datapath = restored_datapath_ ? "adopted pinned maps from a previous agent" : "loaded fresh";
  s.identities = identities_->pod_identity_count();
  s.policy_map.max_entries = datapath_->policy_max_entries();
  if (!policy_refusal.empty()) s.policy_map.last_refusal = policy_refusal;
  s.l7_policy = l7_rules ? fmt::format("enforced by the L7 proxy: {} rules with HTTP rules", l7_rules)
                         : std::string("no HTTP rules");
  s.proxy = proxy_status();
  s.ipv6 = "not supported: IPv6 packets from pods are dropped (UNSUPPORTED_L3_PROTOCOL)";
  s.lost_events = lost_events();
  s.observe_followers = flow_ring_->followers();
  s.conntrack_gc = {ct_gc_runs_.load(), ct_gc_deleted_.load()};
  return s;
}

void Agent::bpf_conntrack(const std::function<bool(std::string_view)>& write) const {
  // Written as it is read, a few hundred entries at a time: a full map (a million entries) as one
  // JSON tree would cost the agent hundreds of MiB that the allocator keeps afterwards.
  constexpr size_t kEntriesPerChunk = 512;
  auto ct = datapath_->conntrack();
  std::string chunk = v1::list_stream_open();
  bool first = true;
  size_t in_chunk = 0;
  for (const auto& k : ct.keys()) {
    auto v = ct.lookup(k);
    if (!v) continue;  // expired and deleted since the keys were read
    v1::ConntrackEntry item{ip_be_to_string(k.saddr) + ":" + std::to_string(ntohs(k.sport)),
                            ip_be_to_string(k.daddr) + ":" + std::to_string(ntohs(k.dport)),
                            proto_name(k.proto),
                            k.scope == CT_EGRESS ? "egress" : "ingress",
                            v->packets_fwd,
                            v->bytes_fwd,
                            v->packets_rev,
                            v->bytes_rev,
                            v->expires,
                            v->src_identity,
                            (v->flags & CT_F_CLOSING) != 0,
                            (v->flags & CT_F_SEEN_REPLY) != 0};
    if (!first) chunk += ',';
    first = false;
    chunk += nlohmann::json(item).dump();
    if (++in_chunk == kEntriesPerChunk) {
      if (!write(chunk)) return;  // the client went away
      chunk.clear();
      in_chunk = 0;
    }
  }
  chunk += v1::list_stream_close();
  write(chunk);
}

v1::IpcacheList Agent::bpf_ipcache() const {
  v1::IpcacheList list;
  datapath_->ipcache().for_each([&](const ipcache_key& k, const ipcache_value& v) {
    std::string kind = (v.flags & IPCACHE_F_HOST) ? "host" : (v.flags & IPCACHE_F_LOCAL_POD) ? "local-pod" : "cidr";
    list.items.push_back({ip_be_to_string(k.ip4) + "/" + std::to_string(k.prefixlen), v.identity, kind});
  });
  return list;
}

v1::BpfEndpoints Agent::bpf_endpoints() const {
  v1::BpfEndpoints out;
  auto metrics = datapath_->metrics();
  datapath_->endpoints().for_each([&](const endpoint_key& k, const endpoint_info& v) {
    out.items.push_back({ip_be_to_string(k.ip4), v.ifindex, v.identity, v.endpoint_id});
  });
  for (const auto& k : metrics.keys()) {
    uint64_t packets = 0, bytes = 0;
    for (const auto& v : metrics.lookup(k)) packets += v.packets, bytes += v.bytes;
    out.counters.push_back({k.endpoint_id, datapath::drop_reason_name(k.reason),
                            k.dir == METRIC_INGRESS ? "ingress" : "egress", packets, bytes});
  }
  return out;
}

}  // namespace pilus::agent
