// Policy: the agent's side of the policy controller (controller/policy_controller.h): what it
// resolves against (the pods, identities, node addresses) and the policy views and trace.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <set>

#include <spdlog/spdlog.h>

#include "abi/identity.h"
#include "agent/agent.h"
#include "common/error.h"
#include "datapath/drop_reason_names.h"
#include "endpoint/ipv4.h"

namespace pilus::agent {

namespace {

std::string labels_text(const identity::LabelSet* labels) {
  return labels ? labels->to_string() : std::string("?");
}

}  // namespace

policy::ResolverInput Agent::policy_input() const {
  policy::ResolverInput in;
  policy_controller_->add_rules(in);  // first: pods' visibility rules below index after them
  for (const auto& [key, st] : pods_) {
    policy::EndpointView v;
    v.id = st.ep.id;
    v.identity = st.ep.identity;
    if (const auto* l = identities_->labels_of(st.ep.identity)) v.labels = *l;
    v.ip = st.ep.ip;
    for (const auto& c : st.pod.containers) v.ports.insert(v.ports.end(), c.ports.begin(), c.ports.end());
    if (auto a = st.pod.annotations.find(std::string(policy::kProxyVisibilityAnnotation)); a != st.pod.annotations.end()) {
      try {
        v.visibility = policy::parse_proxy_visibility(a->second);  // checked at apply; a stored pod may predate that
      } catch (const Error& e) {
        spdlog::warn("pod {}: {}: {}", key, policy::kProxyVisibilityAnnotation, e.what());
      }
      if (!v.visibility.empty()) {
        // The rule the proxy applies there: one HTTP rule matching every request.
        policy::PolicyRule rule;
        rule.policy_kind = "Pod";
        rule.policy_name = st.pod.name;
        rule.policy_namespace = st.pod.ns;
        rule.source_path = fmt::format("metadata.annotations[{}]", policy::kProxyVisibilityAnnotation);
        rule.visibility_only = true;
        rule.http = {policy::HttpRule{}};
        v.visibility_rule = in.rules.size();
        in.rules.push_back(std::move(rule));
      }
    }
    in.endpoints.push_back(std::move(v));
  }
  for (const auto& info : identities_->list())
    if (info.id < IDENTITY_FIRST_LOCAL) in.identities.push_back({info.id, info.labels});
  in.host_ips = host_ips_;
  in.cidr_identities = policy_controller_->cidr_identities();
  in.proxy_port = proxy_ ? proxy_->port() : 0;
  in.refs = &endpoint_index_.policy_refs();
  return in;
}

// The policy controller resolves and writes the maps; between the new entries and the stale
// ones' removal, the proxy gets the new policy and every endpoint its new flags.
void Agent::regenerate_policy() {
  policy_controller_->reconcile(policy_input(), [this] {
    update_proxy_policy();
    for (auto& [key, st] : pods_) write_endpoint_maps(st.ep);
  });
}

api::v1::PolicyList Agent::policies() const {
  Lock lock(mutex_);
  auto list = api::v1::PolicyList::kube();
  for (const auto& [key, p] : policy_controller_->desired()) {
    std::set<std::string> subjects;
    size_t l7 = 0;
    for (const auto& r : p.converted.rules) {
      subjects.insert(r.subject.to_string());
      if (!r.http.empty()) l7++;
    }
    for (const auto& d : p.converted.default_deny) subjects.insert(d.subject.to_string());
    // How many local pods it selects (by any of its rules or default-deny records).
    size_t selected = 0;
    for (const auto& [name, st] : pods_) {
      const identity::LabelSet* labels = identities_->labels_of(st.ep.identity);
      if (!labels) continue;
      bool hit = false;
      for (const auto& r : p.converted.rules) hit = hit || r.subject.matches(*labels);
      for (const auto& d : p.converted.default_deny) hit = hit || d.subject.matches(*labels);
      if (hit) selected++;
    }
    api::v1::Policy& item = list.items.emplace_back();
    for (const auto& r : p.converted.rules) {
      api::v1::PolicyRuleView& rule = item.rules.emplace_back();
      rule.path = r.source_path;
      rule.direction = policy::to_string(r.direction);
      rule.deny = r.deny;
      if (r.all_peers)
        rule.peers = {"all"};
      else
        for (const auto& peer : r.peers) rule.peers.push_back(policy::to_string(peer));
      for (const auto& port : r.ports) rule.ports.push_back(port.to_string());
      rule.http_rules = r.http.size();
    }
    // apiVersion, metadata and spec as the manifest gave them (kubectl -o yaml); the rest is pilus's view.
    item.kind = p.doc.kind;
    item.api_version = p.doc.api_version;
    item.metadata.name = p.doc.name();
    if (manifest::is_namespaced_kind(p.doc.kind)) item.metadata.ns = p.doc.ns();
    // Read from the manifest as given (its keys, not the API's).
    if (auto m = p.doc.body.find("metadata"); m != p.doc.body.end() && m->contains("labels"))
      item.metadata.labels = (*m)["labels"].get<api::v1::Labels>();
    item.ns = p.converted.rules.empty() && p.converted.default_deny.empty()
                  ? p.doc.ns()
                  : (p.converted.rules.empty() ? p.converted.default_deny[0].policy_namespace
                                               : p.converted.rules[0].policy_namespace);
    item.name = p.doc.name();
    item.selects.assign(subjects.begin(), subjects.end());
    item.endpoints = selected;
    item.l7_rules = l7;
    if (auto spec = p.doc.body.find("spec"); spec != p.doc.body.end()) item.spec = *spec;
    if (auto specs = p.doc.body.find("specs"); specs != p.doc.body.end()) item.specs = *specs;
  }
  return list;
}

api::v1::BpfPolicy Agent::bpf_policy(const std::string& pod) const {
  Lock lock(mutex_);
  std::string key = pod.find('/') == std::string::npos ? "default/" + pod : pod;
  auto it = pods_.find(key);
  if (it == pods_.end()) fail("pod \"{}\" not found", key);
  uint16_t id = it->second.ep.id;
  api::v1::BpfPolicy out{key, id, {}, {}};
  datapath_->policy().for_each([&](const policy_key& k, const policy_entry& v) {
    if (k.endpoint_id != id) return;
    std::vector<std::string> refs;
    for (const auto& r : endpoint_index_.policy_refs().lookup(v.rule_id)) refs.push_back(policy::to_string(r));
    std::string who = refs.empty() ? std::string("?") : fmt::format("{}", fmt::join(refs, ", "));
    std::string direction = k.direction == METRIC_INGRESS ? "ingress" : "egress";
    if (k.peer_kind == POLICY_PEER_DEFAULT_DENY) {
      out.items.push_back({direction, 0, "(no rule allows)", "ANY", "default-deny", 0, who});
      return;
    }
    std::string labels = k.identity == 0 ? "(any)" : labels_text(identities_->labels_of(k.identity));
    if (k.peer_kind == POLICY_PEER_ENDPOINT) {
      // A named port, resolved on this destination pod.
      labels = "(endpoint " + std::to_string(k.identity) + ")";
      for (const auto& [name, st] : pods_)
        if (st.ep.id == k.identity) labels = "(pod " + name + ")";
    }
    out.items.push_back({direction, k.peer_kind == POLICY_PEER_ENDPOINT ? 0 : k.identity, labels, policy::port_text(k),
                         (v.flags & POLICY_F_DENY) ? "deny" : v.proxy_port ? "redirect" : "allow", ntohs(v.proxy_port),
                         who});
  });
  if (auto e = datapath_->endpoints().lookup(endpoint_key{it->second.ep.ip.network_order()})) {
    out.default_deny.ingress = (e->flags & ENDPOINT_F_INGRESS_ENFORCED) != 0;
    out.default_deny.egress = (e->flags & ENDPOINT_F_EGRESS_ENFORCED) != 0;
  }
  return out;
}

api::v1::PolicyTrace Agent::policy_trace(const TraceSide& from, const TraceSide& to, uint16_t port,
                                         const std::string& protocol) const {
  Lock lock(mutex_);
  uint8_t proto = protocol == "udp" ? IPPROTO_UDP : protocol == "icmp" ? IPPROTO_ICMP : IPPROTO_TCP;
  if (protocol != "tcp" && protocol != "udp" && protocol != "icmp")
    fail("unknown protocol \"{}\" (tcp, udp or icmp)", protocol);
  struct Side {
    std::string name;
    uint32_t identity = 0;
    uint32_t cidr_identity = 0;  // longest policy CIDR holding the address
    const endpoint::Endpoint* ep = nullptr;
  };
  auto cidr_identity_of = [&](endpoint::Ipv4 ip) {
    uint32_t id = 0;
    int best = -1;
    for (const auto& [prefix, pid] : policy_controller_->cidr_identities())
      if (prefix.contains(ip) && prefix.length > best) best = prefix.length, id = pid;
    return id;
  };
  // A pod that does not exist, given by namespace and labels: it gets the identity its label set
  // has (or would get), and the policy is resolved again with it as one more endpoint.
  std::vector<endpoint::Endpoint> hypothetical;
  hypothetical.reserve(2);
  policy::ResolverInput input;
  bool resolve_again = false;
  auto side = [&](const TraceSide& t) {
    if (!t.labels.empty()) {
      manifest::Pod pod;
      pod.ns = t.ns.empty() ? "default" : t.ns;
      pod.name = "(pod with these labels)";
      pod.labels = t.labels;
      identity::LabelSet labels = identity_labels(pod);
      if (!resolve_again) input = policy_input(), resolve_again = true;
      endpoint::Endpoint ep;
      ep.id = static_cast<uint16_t>(0xFFFF - hypothetical.size());  // endpoint ids never reach this
      ep.ns = pod.ns;
      ep.identity = identities_->lookup(labels).value_or(IDENTITY_FIRST_LOCAL - 1 - hypothetical.size());
      input.endpoints.push_back({ep.id, ep.identity, labels, {}, {}});
      bool known = false;
      for (const auto& id : input.identities) known = known || id.id == ep.identity;
      if (!known) input.identities.push_back({ep.identity, labels});
      hypothetical.push_back(ep);
      Side s{pod.ns + "/{" + labels.to_string() + "}"};
      s.ep = &hypothetical.back();
      s.identity = ep.identity;
      return s;
    }
    const std::string& text = t.name;
    Side s{text};
    std::string key = text.find('/') == std::string::npos ? "default/" + text : text;
    if (auto it = pods_.find(key); it != pods_.end()) {
      s.ep = &it->second.ep;
      s.identity = s.ep->identity;
      s.cidr_identity = cidr_identity_of(s.ep->ip);
      s.name = key;
      return s;
    }
    // An address: the identity the ipcache gives it (longest prefix).
    endpoint::Ipv4 ip;
    try {
      ip = endpoint::Ipv4Prefix(endpoint::parse_ipv4_prefix(text, true)).address;
    } catch (const Error&) {
      fail("\"{}\" is neither a pod (namespace/name) nor an IPv4 address", text);
    }
    s.identity = IDENTITY_WORLD;
    int best = -1;
    datapath_->ipcache().for_each([&](const ipcache_key& k, const ipcache_value& v) {
      endpoint::Ipv4Prefix p{endpoint::Ipv4::from_network_order(k.ip4), static_cast<int>(k.prefixlen)};
      if (p.contains(ip) && static_cast<int>(k.prefixlen) > best) best = static_cast<int>(k.prefixlen), s.identity = v.identity;
    });
    for (const auto& [k, st] : pods_)
      if (st.ep.ip == ip) s.ep = &st.ep, s.name = k;
    s.cidr_identity = cidr_identity_of(ip);
    return s;
  };
  Side src = side(from), dst = side(to);
  policy::ResolvedPolicy again;
  if (resolve_again) again = policy::resolve(input);
  const policy::ResolvedPolicy& resolved = resolve_again ? again : policy_controller_->resolved();
  const auto& rules = policy_controller_->rules();
  std::vector<api::v1::TraceStep> steps;
  bool allowed = true;
  auto check = [&](const Side& local, uint8_t dir, const Side& peer) {
    uint16_t peer_endpoint = dir == METRIC_EGRESS && peer.ep ? peer.ep->id : 0;
    auto v = policy::evaluate(resolved, local.ep->id, dir, peer.identity, proto, port, peer.cidr_identity, peer_endpoint);
    std::string decided = "no policy selects this direction: allowed by default";
    if (v.entry && !v.entry->rules.empty() && v.entry->rules.front() < rules.size()) {
      const auto& r = rules[v.entry->rules.front()];
      decided = policy::policy_name(r.policy_kind, r.policy_namespace, r.policy_name) + " " + r.source_path;
    } else if (!v.allowed) {
      const auto& ep_policy = resolved.endpoints.at(local.ep->id);
      const auto& by = dir == METRIC_INGRESS ? ep_policy.ingress_enforced_by : ep_policy.egress_enforced_by;
      decided = "default deny (selected by " + (by.empty() ? std::string("?") : by.front()) + "), no rule allows it";
    }
    steps.push_back({local.name, dir == METRIC_INGRESS ? "ingress" : "egress", v.allowed ? "ALLOWED" : "DENIED",
                     v.allowed ? "" : datapath::drop_reason_name(v.drop_reason), decided});
    allowed = allowed && v.allowed;
  };
  if (src.ep) check(src, METRIC_EGRESS, dst);
  if (dst.ep && src.identity != IDENTITY_HOST) check(dst, METRIC_INGRESS, src);
  if (!dst.ep && !(src.ep && dst.identity == IDENTITY_HOST)) {
    steps.push_back({dst.name, "", "DENIED", "NO_ROUTE_TO_OUTSIDE",
                     "the node is a sandbox: only pods and the node are reachable"});
    allowed = false;
  }
  return {src.name, src.identity, dst.name, dst.identity, port, protocol, allowed ? "ALLOWED" : "DENIED",
          std::move(steps)};
}

}  // namespace pilus::agent
