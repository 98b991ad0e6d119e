// The one normalized rule shape that NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy convert to.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "endpoint/ipv4.h"
#include "policy/selector.h"

namespace pilus::policy {

enum class Direction { kIngress, kEgress };

inline std::string_view to_string(Direction d) { return d == Direction::kIngress ? "ingress" : "egress"; }

// Cilium's entities: named groups of identities that selectors cannot express by labels.
enum class Entity { kWorld, kHost, kRemoteNode, kCluster, kAll, kKubeApiserver, kHealth, kInit, kUnmanaged, kIngress };

// Spelled as in CiliumNetworkPolicy's fromEntities/toEntities.
inline constexpr std::array<std::pair<Entity, std::string_view>, 10> kEntityNames = {{
    {Entity::kWorld, "world"},
    {Entity::kHost, "host"},
    {Entity::kRemoteNode, "remote-node"},
    {Entity::kCluster, "cluster"},
    {Entity::kAll, "all"},
    {Entity::kKubeApiserver, "kube-apiserver"},
    {Entity::kHealth, "health"},
    {Entity::kInit, "init"},
    {Entity::kUnmanaged, "unmanaged"},
    {Entity::kIngress, "ingress"},
}};

inline std::string_view to_string(Entity e) {
  for (const auto& [entity, name] : kEntityNames) {
    if (entity == e) return name;
  }
  return "?";
}

inline std::optional<Entity> parse_entity(std::string_view name) {
  for (const auto& [entity, text] : kEntityNames) {
    if (text == name) return entity;
  }
  return std::nullopt;
}

// SCTP is accepted (Kubernetes and Cilium accept it) but pilus carries no SCTP: a port
// with it matches nothing (never TCP or UDP), and apply warns.
enum class Protocol { kTcp, kUdp, kAny, kSctp };

inline std::string_view to_string(Protocol p) {
  switch (p) {
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kUdp:
      return "UDP";
    case Protocol::kAny:
      return "ANY";
    case Protocol::kSctp:
      return "SCTP";
  }
  return "?";
}

// One destination port match. Exactly one of: all ports (port 0, no name), a number or
// range (port..end_port), or a named port that the resolver looks up in each selected
// pod's containerPorts (a name can mean different numbers in different pods).
struct PortRule {
  Protocol protocol = Protocol::kAny;
  uint16_t port = 0;      // 0 with an empty port_name: every port of `protocol`
  uint16_t end_port = 0;  // last port of a range; 0 for a single port (never equal to port)
  std::string port_name;  // lowercase IANA service name; port is 0 then

  bool all_ports() const { return port == 0 && port_name.empty(); }
  // "80/TCP", "8000-8080/TCP", "http/ANY", "all/UDP".
  std::string to_string() const {
    std::string what = !port_name.empty() ? port_name
                       : port == 0        ? std::string("all")
                       : end_port != 0    ? fmt::format("{}-{}", port, end_port)
                                          : fmt::format("{}", port);
    return fmt::format("{}/{}", what, policy::to_string(protocol));
  }
  bool operator==(const PortRule&) const = default;
};

// An HTTP request match (CiliumNetworkPolicy toPorts[].rules.http[]). method, path and host
// are regular expressions as in Cilium; empty fields match anything. Stored for the L7 proxy.
struct HttpRule {
  std::string method, path, host;
  std::vector<std::string> headers;  // each "Name" or "Name: value", all must be present

  bool operator==(const HttpRule&) const = default;
};

// Peers selected by labels, namespace scoping already applied (see policy_conversion.h).
struct SelectorPeer {
  LabelSelector selector;
  bool operator==(const SelectorPeer&) const = default;
};

// Peers whose address is in `cidr` but in none of `except` (each strictly inside cidr).
// pilus matches pods by address too, not only the world (REFERENCE.md).
struct CidrPeer {
  endpoint::Ipv4Prefix cidr;
  std::vector<endpoint::Ipv4Prefix> except;

  bool contains(endpoint::Ipv4 ip) const {
    if (!cidr.contains(ip)) return false;
    for (const endpoint::Ipv4Prefix& e : except) {
      if (e.contains(ip)) return false;
    }
    return true;
  }
  bool operator==(const CidrPeer&) const = default;
};

struct EntityPeer {
  Entity entity;
  bool operator==(const EntityPeer&) const = default;
};

using Peer = std::variant<SelectorPeer, CidrPeer, EntityPeer>;

inline std::string to_string(const Peer& peer) {
  if (const auto* s = std::get_if<SelectorPeer>(&peer)) return "endpoints " + s->selector.to_string();
  if (const auto* e = std::get_if<EntityPeer>(&peer)) return fmt::format("entity {}", to_string(e->entity));
  const auto& c = std::get<CidrPeer>(peer);
  std::string out = "cidr " + endpoint::to_string(c.cidr);
  for (const endpoint::Ipv4Prefix& e : c.except) out += " except " + endpoint::to_string(e);
  return out;
}

// One allow or deny statement: traffic in `direction` of the endpoints selected by
// `subject`, with a peer matching one of `peers` (or any peer when all_peers), to a
// port matching one of `ports` (any port when empty), and for HTTP, a request matching
// one of `http` (no L7 filtering when empty).
struct PolicyRule {
  std::string policy_kind;       // "NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"
  std::string policy_name;
  std::string policy_namespace;  // "" for clusterwide policies
  LabelSelector subject;         // for namespaced kinds already limited to the policy's namespace
  Direction direction = Direction::kIngress;
  bool deny = false;             // from ingressDeny/egressDeny
  // True exactly when `peers` is empty: a rule without any peer field (a NetworkPolicy
  // rule without from/to, a Cilium rule with only toPorts). Rules that can match no
  // peer at all (a Cilium `{}`) are not emitted.
  bool all_peers = false;
  std::vector<Peer> peers;
  std::vector<PortRule> ports;  // empty: all ports and protocols
  std::vector<HttpRule> http;   // non-empty only on allow rules, with TCP ports
  int rule_index = 0;           // position in its section: ingress[rule_index]
  std::string source_path;      // where it was written: "spec.ingress[0]", "specs[1].egress[2].toPorts[0]"
  // Made from a pod's proxy-visibility annotation: never applied by subject, only named by
  // the entries it sends to the proxy (see EndpointView::visibility).
  bool visibility_only = false;

  bool operator==(const PolicyRule&) const = default;
};

// "This policy makes `direction` default-deny for the endpoints `subject` selects": with
// one of these, traffic no rule allows is dropped (POLICY_DENIED). Separate from the rules
// because a policy can turn default deny on without allowing anything (`ingress: []`).
struct DefaultDeny {
  std::string policy_kind, policy_name, policy_namespace;
  LabelSelector subject;
  Direction direction = Direction::kIngress;
  std::string reason;  // for display, e.g. "policyTypes lists Egress", "spec.ingress is present"

  bool operator==(const DefaultDeny&) const = default;
};

// Everything one policy object contributes, plus notes for `pilus apply` to print where
// pilus's reading differs from what a user of upstream Cilium or Kubernetes might expect.
// Warnings are for what pilus accepts but cannot honour (kubectl-style "Warning:" lines).
struct ConvertedPolicy {
  std::vector<PolicyRule> rules;
  std::vector<DefaultDeny> default_deny;
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
};

}  // namespace pilus::policy
