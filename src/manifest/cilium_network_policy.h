// The cilium.io/v2 CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy kinds, read by one parser.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "manifest/document.h"
#include "policy/policy_rule.h"
#include "policy/selector.h"

namespace pilus::manifest {

// One toPorts[] entry: the ports, and the HTTP rules that apply on them.
struct CiliumPortRule {
  std::vector<policy::PortRule> ports;  // at least one; protocol defaults to ANY
  std::vector<policy::HttpRule> http;   // rules.http; empty: no L7 filtering
};

// One entry of ingress/egress/ingressDeny/egressDeny. Peer lists are as written (selectors
// not yet scoped to a namespace); at most one kind of peer is set, as Cilium requires.
struct CiliumPeerRule {
  std::vector<policy::LabelSelector> endpoints;  // fromEndpoints / toEndpoints
  std::vector<policy::CidrPeer> cidrs;           // fromCIDR and fromCIDRSet (or to...)
  std::vector<policy::Entity> entities;          // fromEntities / toEntities
  std::vector<CiliumPortRule> to_ports;          // empty: all ports
  // Peer fields written as empty lists ("fromEndpoints: []"): Cilium counts them as absent.
  std::vector<std::string> empty_peer_fields;

  bool has_peers() const { return !endpoints.empty() || !cidrs.empty() || !entities.empty(); }
};

struct CiliumRule {
  std::string path;                       // "spec" or "specs[N]", for messages
  policy::LabelSelector endpoint_selector;  // as written, not yet scoped to a namespace
  std::string description;
  // nullopt when the section is absent; present but empty (`egress:`, `egress: []`) is an
  // empty vector, which pilus treats as default deny.
  std::optional<std::vector<CiliumPeerRule>> ingress, egress, ingress_deny, egress_deny;
  // enableDefaultDeny.{ingress,egress}; nullopt when not written.
  std::optional<bool> default_deny_ingress, default_deny_egress;
};

struct CiliumPolicyCommon {
  std::string name;
  std::string ns;  // "" for the clusterwide kind
  std::map<std::string, std::string> labels, annotations;
  std::vector<CiliumRule> rules;  // spec first, then specs[] in order
};

struct CiliumNetworkPolicy : CiliumPolicyCommon {
  static constexpr std::string_view kKind = "CiliumNetworkPolicy";
};

struct CiliumClusterwideNetworkPolicy : CiliumPolicyCommon {
  static constexpr std::string_view kKind = "CiliumClusterwideNetworkPolicy";
};

// Strict: unknown fields and invalid values are errors naming the field; Cilium features
// pilus does not implement (nodeSelector, toFQDNs, toServices, icmps, kafka/dns rules,
// ...) are errors saying so rather than being ignored.
CiliumNetworkPolicy parse_cilium_network_policy(const Document& d);
CiliumClusterwideNetworkPolicy parse_cilium_clusterwide_network_policy(const Document& d);

}  // namespace pilus::manifest
