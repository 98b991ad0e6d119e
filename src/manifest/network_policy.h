// The Kubernetes NetworkPolicy kind (networking.k8s.io/v1), plus field readers shared with the Cilium policy kinds.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "manifest/document.h"
#include "manifest/validation.h"
#include "policy/policy_rule.h"
#include "policy/selector.h"

namespace pilus::manifest {

// One entry of from[]/to[]: podSelector and namespaceSelector together mean both must
// match; ipBlock stands alone.
struct NetworkPolicyPeer {
  std::optional<policy::LabelSelector> pod_selector;        // k8s-source keys, as written
  std::optional<policy::LabelSelector> namespace_selector;  // over namespace labels, keys as written
  std::optional<policy::CidrPeer> ip_block;
};

struct NetworkPolicyRule {
  std::vector<NetworkPolicyPeer> peers;  // from/to; empty (or absent) matches every peer
  std::vector<policy::PortRule> ports;   // empty (or absent) matches every port; protocol defaults to TCP
};

struct NetworkPolicy {
  static constexpr std::string_view kKind = "NetworkPolicy";
  std::string name, ns;
  std::map<std::string, std::string> labels, annotations;
  policy::LabelSelector pod_selector;  // k8s-source keys, not yet limited to `ns`
  std::vector<policy::Direction> policy_types;  // as written; empty when absent (Kubernetes defaults apply)
  // nullopt when the section is absent: `ingress: []` and no ingress differ in Kubernetes.
  std::optional<std::vector<NetworkPolicyRule>> ingress, egress;
};

// Strict: unknown fields, invalid selectors, CIDRs, ports and protocols are errors naming the field.
NetworkPolicy parse_network_policy(const Document& d);

// ---- readers shared with cilium_network_policy.cpp

enum class SelectorSyntax {
  kKubernetes,  // plain label keys, which select k8s labels
  kCilium,      // keys may carry a source ("k8s:app", "any:app", "reserved:host"); none means any
};

// {matchLabels, matchExpressions}: operators In/NotIn (values required), Exists/DoesNotExist (no values).
policy::LabelSelector read_label_selector(const Value& v, SelectorSyntax syntax);

// An IPv4 CIDR without host bits; a bare address is a /32 when allowed.
endpoint::Ipv4Prefix read_ipv4_cidr(const Value& v, bool allow_bare_address);

// A cidr and its optional except list, each entry strictly inside the cidr.
policy::CidrPeer read_cidr_block(const Value& cidr, const std::optional<Value>& except, bool allow_bare_address);

// Rejects a subject selector that names another namespace than the policy's own: a
// namespaced policy only ever selects its own namespace's endpoints, so it would select nothing.
void check_subject_namespace(const Value& v, const policy::LabelSelector& selector, const std::string& ns);

}  // namespace pilus::manifest
