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

std::string ip_be_to_string(uint32_t ip_be) { return endpoint::to_string(endpoint::Ipv4::from_network_order(ip_be)); }

nlohmann::json labels_json(const std::map<std::string, std::string>& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  return j;
}

std::string proto_name(uint8_t proto) {
  switch (proto) {
    case 6: return "TCP";
    case 17: return "UDP";
    case 1: return "ICMP";
    default: return std::to_string(proto);
  }
}

}  // namespace

nlohmann::json Agent::pods() const {
  Lock lock(mutex_);
  nlohmann::json items = nlohmann::json::array();
  for (const auto& [key, st] : pods_) {
    // Shaped as the Kubernetes API returns a Pod; podIP, netns, identity and phase are what
    // scripts rely on, the rest is pilus's own (endpointID, hostInterface, pid).
    nlohmann::json metadata = {{"name", st.pod.name}, {"namespace", st.pod.ns}, {"labels", labels_json(st.pod.labels)}};
    if (!st.pod.annotations.empty()) metadata["annotations"] = labels_json(st.pod.annotations);
    nlohmann::json containers = nlohmann::json::array();
    for (const auto& c : st.pod.containers) {
      nlohmann::json container = {{"name", c.name}};
      if (!c.image.empty()) container["image"] = c.image;
      if (!c.command.empty()) container["command"] = c.command;
      if (!c.args.empty()) container["args"] = c.args;
      nlohmann::json ports = nlohmann::json::array();
      for (const auto& p : c.ports) {
        nlohmann::json port = {{"containerPort", p.container_port}, {"protocol", p.protocol}};
        if (!p.name.empty()) port["name"] = p.name;
        ports.push_back(port);
      }
      if (!ports.empty()) container["ports"] = ports;
      containers.push_back(container);
    }
    const std::string ip = endpoint::to_string(st.ep.ip);
    items.push_back({{"apiVersion", "v1"},
                     {"kind", "Pod"},
                     {"metadata", metadata},
                     {"spec", {{"containers", containers}, {"nodeName", config_.node_name}}},
                     {"status",
                      {{"podIP", ip},
                       {"podIPs", nlohmann::json::array({{{"ip", ip}}})},
                       {"hostIP", endpoint::to_string(ipam_.router_ip())},
                       {"netns", st.ep.netns},
                       {"identity", st.ep.identity},
                       {"phase", st.ep.phase()},
                       {"hostInterface", st.ep.host_if},
                       {"endpointID", st.ep.id},
                       {"pid", st.ep.process.pid}}}});
  }
  return {{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}};
}

nlohmann::json Agent::endpoints() const {
  Lock lock(mutex_);
  nlohmann::json items = nlohmann::json::array();
  for (const auto& [key, st] : pods_) {
    nlohmann::json labels = nlohmann::json::array();
    if (const auto* set = identities_->labels_of(st.ep.identity))
      for (const auto& l : *set) labels.push_back(l.to_string());
    items.push_back({{"id", st.ep.id},
                     {"pod", key},
                     {"ipv4", endpoint::to_string(st.ep.ip)},
                     {"identity", st.ep.identity},
                     {"labels", labels},
                     {"interface", st.ep.host_if},
                     {"ifindex", st.ep.ifindex},
                     {"netns", st.ep.netns},
                     {"state", st.ep.ifindex ? "ready" : "not-ready"}});
  }
  return {{"items", items}};
}

nlohmann::json Agent::identities() const {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& info : identities_->list()) {
    nlohmann::json labels = nlohmann::json::array();
    for (const auto& l : info.labels) labels.push_back(l.to_string());
    items.push_back({{"id", info.id}, {"labels", labels}, {"references", info.refcount}, {"reserved", info.reserved}});
  }
  return {{"items", items}};
}

nlohmann::json Agent::namespaces() const {
  Lock lock(mutex_);
  nlohmann::json items = nlohmann::json::array();
  auto item = [](const std::string& name, const nlohmann::json& labels) {
    return nlohmann::json{{"apiVersion", "v1"},
                          {"kind", "Namespace"},
                          {"metadata", {{"name", name}, {"labels", labels}}},
                          {"status", {{"phase", "Active"}}}};
  };
  items.push_back(item("default", nlohmann::json::object()));
  for (const auto& [name, ns] : namespaces_) {
    if (name == "default") items.erase(0);
    items.push_back(item(name, labels_json(ns.labels)));
  }
  return {{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}};
}

nlohmann::json Agent::status() const {
  nlohmann::json features = nlohmann::json::array();
  for (const auto& f : features_)
    features.push_back({{"name", f.name}, {"required", f.required}, {"available", f.available}});
  nlohmann::json maps = nlohmann::json::array();
  for (const auto& m : datapath_->map_pressure())
    maps.push_back({{"name", m.name},
                    {"entries", m.entries},
                    {"maxEntries", m.max_entries},
                    {"pressure", m.max_entries ? double(m.entries) / double(m.max_entries) : 0.0}});
  utsname u{};
  uname(&u);
  size_t endpoints = 0, policies = 0, l7_rules = 0, policy_entries = 0;
  std::string policy_refusal;
  {
    Lock lock(mutex_);
    policy_entries = policy_controller_->resolved().entries.size();
    policy_refusal = policy_controller_->refusal();
    endpoints = pods_.size();
    policies = policy_controller_->desired().size();
    for (const auto& r : policy_controller_->rules())
      if (!r.http.empty()) l7_rules++;
  }
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  return {{"health", "Ok"},
          {"kernel", std::string(u.release)},
          {"uptimeSeconds", uptime.count()},
          {"podCIDR", ipam_.cidr()},
          {"routerIP", endpoint::to_string(ipam_.router_ip())},
          {"bpfRoot", config_.bpf_root},
          {"datapath", restored_datapath_ ? "adopted pinned maps from a previous agent" : "loaded fresh"},
          {"endpoints", endpoints},
          {"identities", identities_->pod_identity_count()},
          {"policies", policies},
          {"policyMap",
           {{"entries", policy_entries},
            {"maxEntries", datapath_->policy_max_entries()},
            {"lastRefusal", policy_refusal.empty() ? nlohmann::json(nullptr) : nlohmann::json(policy_refusal)}}},
          {"l7Policy", l7_rules ? fmt::format("enforced by the L7 proxy: {} rules with HTTP rules", l7_rules)
                                : std::string("no HTTP rules")},
          {"proxy", proxy_status()},
          {"ipv6", "not supported: IPv6 packets from pods are dropped (UNSUPPORTED_L3_PROTOCOL)"},
          {"lostEvents", lost_events()},
          {"conntrackGC", {{"runs", ct_gc_runs_.load()}, {"deleted", ct_gc_deleted_.load()}}},
          {"kernelFeatures", features},
          {"maps", maps}};
}

void Agent::bpf_conntrack(const std::function<bool(std::string_view)>& write) const {
  // Written as it is read, a few hundred entries at a time: a full map (a million entries) as one
  // JSON tree would cost the agent hundreds of MiB that the allocator keeps afterwards.
  constexpr size_t kEntriesPerChunk = 512;
  auto ct = datapath_->conntrack();
  std::string chunk = "{\"items\":[";
  bool first = true;
  size_t in_chunk = 0;
  for (const auto& k : ct.keys()) {
    auto v = ct.lookup(k);
    if (!v) continue;  // expired and deleted since the keys were read
    nlohmann::json item = {{"source", ip_be_to_string(k.saddr) + ":" + std::to_string(ntohs(k.sport))},
                           {"destination", ip_be_to_string(k.daddr) + ":" + std::to_string(ntohs(k.dport))},
                           {"protocol", proto_name(k.proto)},
                           {"scope", k.scope == CT_EGRESS ? "egress" : "ingress"},
                           {"packetsForward", v->packets_fwd},
                           {"bytesForward", v->bytes_fwd},
                           {"packetsReply", v->packets_rev},
                           {"bytesReply", v->bytes_rev},
                           {"expires", v->expires},
                           {"sourceIdentity", v->src_identity},
                           {"closing", (v->flags & CT_F_CLOSING) != 0},
                           {"seenReply", (v->flags & CT_F_SEEN_REPLY) != 0}};
    if (!first) chunk += ',';
    first = false;
    chunk += item.dump();
    if (++in_chunk == kEntriesPerChunk) {
      if (!write(chunk)) return;  // the client went away
      chunk.clear();
      in_chunk = 0;
    }
  }
  chunk += "]}\n";
  write(chunk);
}

nlohmann::json Agent::bpf_ipcache() const {
  nlohmann::json items = nlohmann::json::array();
  datapath_->ipcache().for_each([&](const ipcache_key& k, const ipcache_value& v) {
    std::string kind = (v.flags & IPCACHE_F_HOST) ? "host" : (v.flags & IPCACHE_F_LOCAL_POD) ? "local-pod" : "cidr";
    items.push_back(
        {{"prefix", ip_be_to_string(k.ip4) + "/" + std::to_string(k.prefixlen)}, {"identity", v.identity}, {"kind", kind}});
  });
  return {{"items", items}};
}

nlohmann::json Agent::bpf_endpoints() const {
  nlohmann::json items = nlohmann::json::array();
  auto metrics = datapath_->metrics();
  datapath_->endpoints().for_each([&](const endpoint_key& k, const endpoint_info& v) {
    items.push_back({{"ip", ip_be_to_string(k.ip4)},
                     {"ifindex", v.ifindex},
                     {"identity", v.identity},
                     {"endpointID", v.endpoint_id}});
  });
  nlohmann::json counters = nlohmann::json::array();
  for (const auto& k : metrics.keys()) {
    uint64_t packets = 0, bytes = 0;
    for (const auto& v : metrics.lookup(k)) packets += v.packets, bytes += v.bytes;
    counters.push_back({{"endpointID", k.endpoint_id},
                        {"reason", datapath::drop_reason_name(k.reason)},
                        {"direction", k.dir == METRIC_INGRESS ? "ingress" : "egress"},
                        {"packets", packets},
                        {"bytes", bytes}});
  }
  return {{"items", items}, {"counters", counters}};
}

}  // namespace pilus::agent
