// Endpoint lifecycle: what creating, adopting (after a restart), relabelling
// and deleting a pod does to the kernel.
#include <arpa/inet.h>

#include <set>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "common/error.h"
#include "datapath/host_network.h"
#include "endpoint/ipv4.h"

namespace pilus::agent {

identity::LabelSet Agent::identity_labels(const manifest::Pod& pod) const {
  std::map<std::string, std::string> ns_labels;
  if (auto it = namespaces_.find(pod.ns); it != namespaces_.end()) ns_labels = it->second.labels;
  identity::LabelSet labels = identity::pod_labels(pod.labels, pod.ns, ns_labels);
  // As Cilium: the service account is an identity label, so policies can select by it.
  if (!pod.service_account.empty())
    labels.insert({std::string(identity::kSourceK8s), std::string(identity::kServiceAccountLabel), pod.service_account});
  return labels;
}

uint16_t Agent::allocate_endpoint_id() const {
  std::set<uint16_t> used;
  for (const auto& [key, st] : pods_) used.insert(st.ep.id);
  for (uint16_t id = 1; id < ENDPOINTS_MAX; id++)
    if (!used.count(id)) return id;
  fail("no endpoint id left (at most {} endpoints per node)", ENDPOINTS_MAX - 1);
}

void Agent::save_pod(const manifest::Document& doc, const endpoint::Endpoint& ep) {
  store_put("pods", ep.key(), {{"manifest", doc.body}, {"endpoint", endpoint::to_json(ep)}});
}

void Agent::write_endpoint_maps(const endpoint::Endpoint& ep) {
  uint16_t flags = 0;
  const auto& resolved = policy_controller_->resolved();
  if (auto it = resolved.endpoints.find(ep.id); it != resolved.endpoints.end()) flags = it->second.flags;
  // ipcache first: a peer must know who the pod is before the pod can talk.
  ipcache_->put_pod(ep.ip, ep.identity);
  endpoint_map_->put({ep.ip, ep.ifindex, ep.identity, ep.id, flags, ep.host_mac, ep.pod_mac});
  std::vector<std::string> labels;
  if (const auto* set = identities_->labels_of(ep.identity))
    for (const auto& l : *set) labels.push_back(l.to_string());
  endpoint_index_.put(ep.ip.value, observe::EndpointInfo{ep.ns, ep.name, ep.identity, ep.id}, std::move(labels));
}

void Agent::erase_endpoint_maps(const endpoint::Endpoint& ep) {
  endpoint_map_->erase(ep.ip);
  ipcache_->erase_pod(ep.ip);
  endpoint_index_.erase(ep.ip.value);
}

// Every container with a command, with its securityContext over the pod's.
endpoint::ProcessSpec Agent::process_spec(const manifest::Pod& pod, const endpoint::Endpoint& ep) const {
  endpoint::ProcessSpec spec;
  spec.hostname = pod.name;
  spec.netns = ep.netns;
  spec.cgroup_path = cgroup_->path();
  // The agent's store (every pod's manifest and log) and its API are not the pod's business.
  spec.hidden_paths = {config_.state_dir, config_.socket};
  for (const auto& c : pod.containers) {
    if (c.command.empty()) continue;
    endpoint::ContainerProcess p;
    p.name = c.name;
    p.argv = c.command;
    p.argv.insert(p.argv.end(), c.args.begin(), c.args.end());
    // The manifest's env comes last: a name it sets wins.
    p.env = {{"POD_NAME", pod.name}, {"POD_NAMESPACE", pod.ns}, {"POD_IP", endpoint::to_string(ep.ip)}};
    p.env.insert(p.env.end(), c.env.begin(), c.env.end());
    if (!c.working_dir.empty()) p.working_dir = c.working_dir;
    p.log_path = config_.state_dir + "/logs/" + pod.ns + "_" + pod.name + "_" + c.name + ".log";
    auto user = manifest::effective_user(pod, c);
    p.uid = user.uid;
    p.gid = user.gid;
    p.supplemental_groups = user.supplemental_groups;
    p.capabilities = manifest::effective_capabilities(c);
    p.privileged = c.security_context.privileged;
    // Stricter than Kubernetes's default: only an explicit allowPrivilegeEscalation: true
    // (or privileged) lets setuid binaries and file capabilities raise privileges.
    p.no_new_privs = !p.privileged && c.security_context.allow_privilege_escalation != true;
    spec.containers.push_back(std::move(p));
  }
  return spec;
}

endpoint::Endpoint Agent::create_endpoint(const manifest::Pod& pod) {
  endpoint::Endpoint ep;
  ep.ns = pod.ns;
  ep.name = pod.name;
  ep.id = allocate_endpoint_id();
  ep.netns = endpoint::netns_name(pod.ns, pod.name);
  ep.host_if = endpoint::host_if_name(ep.netns);
  ep.host_mac = datapath::mac_from_name(ep.netns, 1);
  ep.pod_mac = datapath::mac_from_name(ep.netns, 2);
  if (datapath::netns_exists(ep.netns) || datapath::link_ifindex(ep.host_if) != 0)
    fail("pod {}: network namespace {} or link {} already exists on this node (left by another run? try `pilus "
         "cleanup`)",
         ep.key(), ep.netns, ep.host_if);
  ep.ip = ipam_.allocate();
  ep.identity = identities_->acquire(identity_labels(pod));
  // Before its entries exist a new pod is default deny wherever a policy selects it: it fails
  // closed for the moment until regenerate_policy().
  policy_controller_->set_endpoint_flags(ep.id, policy_controller_->initial_flags(identity_labels(pod)));
  try {
    datapath::netns_add(ep.netns);
    datapath::create_pod_link({ep.netns, ep.host_if, ep.host_mac, ep.pod_mac, endpoint::to_string(ep.ip),
                               endpoint::to_string(ipam_.router_ip())});
    ep.ifindex = datapath::link_ifindex(ep.host_if);
    if (ep.ifindex == 0) fail("pod {}: link {} vanished while being set up", ep.key(), ep.host_if);
    write_endpoint_maps(ep);
    datapath_->attach_to_pod_veth(ep.ifindex);
    endpoint::ProcessSpec spec = process_spec(pod, ep);
    if (!spec.containers.empty()) ep.process = endpoint::start_pod_process(spec);
  } catch (...) {
    destroy_endpoint(ep);
    throw;
  }
  spdlog::info("pod {} created: ip {} identity {} netns {} link {}", ep.key(), endpoint::to_string(ep.ip),
               ep.identity, ep.netns, ep.host_if);
  return ep;
}

// After an agent restart: the namespace and veth normally still exist and
// carry traffic; only the programs are swapped (atomically) for this agent's
// and the map entries rewritten in place.
void Agent::adopt_endpoint(endpoint::Endpoint& ep, const manifest::Pod& pod) {
  ipam_.allocate_specific(ep.ip);
  ep.identity = identities_->acquire(identity_labels(pod));
  ep.ifindex = datapath::link_ifindex(ep.host_if);
  if (!datapath::netns_exists(ep.netns) || ep.ifindex == 0) {
    spdlog::warn("pod {}: namespace or link missing, recreating its network", ep.key());
    datapath::link_delete(ep.host_if);
    datapath::netns_delete(ep.netns);
    datapath::netns_add(ep.netns);
    datapath::create_pod_link({ep.netns, ep.host_if, ep.host_mac, ep.pod_mac, endpoint::to_string(ep.ip),
                               endpoint::to_string(ipam_.router_ip())});
    ep.ifindex = datapath::link_ifindex(ep.host_if);
  }
  // Until regenerate_policy() recomputes them, the pod keeps the default deny its pinned
  // entry holds, tightened by what the stored policies say: a restart never opens it.
  uint16_t flags = policy_controller_->initial_flags(identity_labels(pod));
  if (auto pinned = endpoint_map_->flags(ep.ip)) flags |= *pinned;
  policy_controller_->set_endpoint_flags(ep.id, flags);
  write_endpoint_maps(ep);
  datapath_->attach_to_pod_veth(ep.ifindex);
}

void Agent::destroy_endpoint(const endpoint::Endpoint& ep) {
  if (ep.process.pid) endpoint::stop_process(ep.process);
  if (ep.ip.value) {
    erase_endpoint_maps(ep);
    ipam_.release(ep.ip);
  }
  datapath::link_delete(ep.host_if);
  datapath::netns_delete(ep.netns);
  if (ep.identity) identities_->release(ep.identity);
}

void Agent::relabel_endpoint(endpoint::Endpoint& ep) {
  const auto& pod = pods_.at(ep.key()).pod;
  uint32_t old_identity = ep.identity;
  ep.identity = identities_->acquire(identity_labels(pod));
  write_endpoint_maps(ep);
  identities_->release(old_identity);
}

}  // namespace pilus::agent
