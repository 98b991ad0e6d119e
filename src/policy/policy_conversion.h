// Conversion of the three policy kinds to PolicyRules, default-deny records and apply-time notes.
#pragma once

#include <vector>

#include "manifest/object.h"
#include "policy/policy_rule.h"

namespace pilus::policy {

// Whether the object is one of the policy kinds (NetworkPolicy, CiliumNetworkPolicy,
// CiliumClusterwideNetworkPolicy).
bool is_policy(const manifest::Object& o);

// Everything a policy contributes; empty for other kinds. Namespaces are resolved here so
// the resolver never needs to know which kind a rule came from:
// - subjects of namespaced kinds get k8s:io.kubernetes.pod.namespace=<ns>;
// - a NetworkPolicy podSelector peer is limited to the policy's namespace; a
//   namespaceSelector becomes terms on io.cilium.k8s.namespace.labels.<key>, `{}` becoming
//   "any namespace" (io.kubernetes.pod.namespace exists); both together are ANDed;
// - Cilium endpoint peers, as in Cilium: in a CiliumNetworkPolicy limited to the policy's
//   namespace unless they name io.kubernetes.pod.namespace, a namespace label or a reserved
//   label; in a clusterwide policy limited to pods (namespace label exists) unless they name
//   the namespace or a reserved label.
// Default deny: a NetworkPolicy per its (defaulted) policyTypes; a Cilium rule for each
// direction that has an allow or deny section, an empty one included (pilus follows the seed,
// see REFERENCE.md), unless enableDefaultDeny says otherwise.
ConvertedPolicy convert_policy(const manifest::Object& o);

// Just the rules of convert_policy().
std::vector<PolicyRule> to_rules(const manifest::Object& o);

}  // namespace pilus::policy
