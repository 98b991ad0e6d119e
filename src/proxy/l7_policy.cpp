#include "proxy/l7_policy.h"

#include <netinet/in.h>

#include "abi/metrics.h"
#include "abi/policy.h"

namespace pilus::proxy {

bool ConnectionRules::connection_allowed() const {
  for (const Direction& d : directions_)
    if (d.denied) return false;
  return true;
}

RequestVerdict ConnectionRules::check(const HttpRequestView& request) const {
  for (const Direction& d : directions_)
    if (d.denied) return {false, true, d.deny_policy};
  RequestVerdict verdict{true, false, {}};
  for (const Direction& d : directions_) {
    if (d.allow_all) continue;
    bool matched = false;
    for (const auto& [set, name] : d.rules) {
      if (set->matches(request)) {
        matched = true;
        if (verdict.policy.empty()) verdict.policy = name;
        break;
      }
    }
    if (!matched) {
      // Name a policy whose rules were checked, so a denial points at what to change.
      return {false, false, d.rules.empty() ? std::string() : d.rules.front().second};
    }
  }
  return verdict;
}

L7Policy::L7Policy(policy::ResolvedPolicy resolved, const std::vector<policy::PolicyRule>& rules,
                   std::map<endpoint::Ipv4Prefix, uint32_t> cidr_identities)
    : resolved_(std::move(resolved)), cidr_identities_(std::move(cidr_identities)) {
  for (const auto& r : rules) {
    compiled_.push_back(r.http.empty() ? nullptr : std::make_shared<const HttpRuleSet>(r.http));
    policy_names_.push_back(r.policy_namespace.empty() ? r.policy_name : r.policy_namespace + "/" + r.policy_name);
  }
  for (const auto& [k, e] : resolved_.entries)
    if (e.value.proxy_port) redirect_entries_++;
}

uint32_t L7Policy::cidr_identity(endpoint::Ipv4 ip) const {
  uint32_t id = 0;
  int best = -1;
  for (const auto& [prefix, cidr_id] : cidr_identities_)
    if (prefix.contains(ip) && prefix.length > best) best = prefix.length, id = cidr_id;
  return id;
}

void L7Policy::add_direction(ConnectionRules& out, uint16_t endpoint_id, uint8_t direction, uint32_t peer,
                             endpoint::Ipv4 peer_ip, uint16_t port, uint16_t peer_endpoint) const {
  ConnectionRules::Direction d;
  uint32_t cidr = cidr_identity(peer_ip);
  // L3/L4 first, as the datapath judges every packet: a deny, or no entry where the
  // direction is enforced, refuses the connection (fail closed, never allow-all).
  policy::Verdict verdict = policy::evaluate(resolved_, endpoint_id, direction, peer, IPPROTO_TCP, port, cidr,
                                             peer_endpoint);
  if (!verdict.allowed) {
    d.denied = true;
    if (verdict.entry)
      for (size_t i : verdict.entry->rules)
        if (i < policy_names_.size()) {
          d.deny_policy = policy_names_[i];
          break;
        }
    out.directions_.push_back(std::move(d));
    return;
  }
  if (!verdict.entry) {
    d.allow_all = true;  // no policy selects this direction of the endpoint
    out.directions_.push_back(std::move(d));
    return;
  }
  for (const auto* e :
       policy::matching_entries(resolved_, endpoint_id, direction, peer, IPPROTO_TCP, port, cidr, peer_endpoint)) {
    if (!e->value.proxy_port) {
      d.allow_all = true;  // a plain L4 allow covers this connection
      continue;
    }
    for (size_t i : e->rules)
      if (i < compiled_.size() && compiled_[i]) d.rules.emplace_back(compiled_[i], policy_names_[i]);
  }
  out.directions_.push_back(std::move(d));
}

ConnectionRules L7Policy::for_connection(const ConnectionOrigin& o) const {
  ConnectionRules out;
  // Both ends, whichever asked for the proxy: the upstream leg must not skip the server's ingress.
  if (o.server_endpoint)
    add_direction(out, o.server_endpoint, METRIC_INGRESS, o.client_identity, o.client_ip, o.server_port);
  if (o.client_endpoint)
    add_direction(out, o.client_endpoint, METRIC_EGRESS, o.server_identity, o.server_ip, o.server_port,
                  o.server_endpoint);
  return out;
}

}  // namespace pilus::proxy
