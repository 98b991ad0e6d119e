// Turns the policy rules into the datapath's policy map entries, per endpoint:
// which peer identities, protocols and ports each endpoint allows or denies in
// each direction, and which directions are default deny. Pure computation:
// the agent gives it the node's state and writes the result to the map.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "abi/policy.h"
#include "endpoint/ipv4.h"
#include "identity/labels.h"
#include "manifest/pod.h"
#include "policy/policy_ref.h"
#include "policy/policy_rule.h"
#include "policy/proxy_visibility.h"

namespace pilus::policy {

struct EndpointView {
  uint16_t id = 0;
  uint32_t identity = 0;
  identity::LabelSet labels;
  endpoint::Ipv4 ip;
  std::vector<manifest::ContainerPort> ports;  // named ports resolve against these
  // The proxy-visibility annotation: what it allows on these ports goes through the proxy,
  // credited to ResolverInput::rules[visibility_rule] (a visibility-only rule whose one HTTP
  // rule matches every request).
  std::vector<VisibilityPort> visibility;
  size_t visibility_rule = 0;
};

struct IdentityView {
  uint32_t id = 0;
  identity::LabelSet labels;
};

struct ResolverInput {
  std::vector<PolicyRule> rules;
  std::vector<DefaultDeny> default_deny;
  std::vector<EndpointView> endpoints;          // local pods
  std::vector<IdentityView> identities;         // pod and reserved identities peers may have
  std::vector<endpoint::Ipv4> host_ips;         // the node's addresses (identity host)
  // Every CIDR named by a rule. A CIDR rule allows these identities only: the
  // datapath finds a peer's CIDR identity by its address, pods included.
  std::map<endpoint::Ipv4Prefix, uint32_t> cidr_identities;  // every CIDR named by a rule
  // The L7 proxy's port (host order): an allow entry made only of rules with
  // HTTP rules redirects to it. 0: no proxy, HTTP rules are enforced at L4 only.
  uint16_t proxy_port = 0;
  // When set, entries carry stable references (rule_id) from this table, and every
  // default-deny direction gets a POLICY_PEER_DEFAULT_DENY entry naming its policies.
  // When null, rule_id is the index of the deciding rule (tests).
  PolicyRefTable* refs = nullptr;
};

struct PolicyKeyLess {
  bool operator()(const policy_key& a, const policy_key& b) const;
};

struct ResolvedEntry {
  policy_entry value{};
  // Indexes into ResolverInput::rules that produced it; the first decided (for a deny, the
  // deny rule). Empty for POLICY_PEER_DEFAULT_DENY records.
  std::vector<size_t> rules;
};

struct EndpointPolicy {
  uint16_t flags = 0;  // ENDPOINT_F_*_ENFORCED
  std::vector<std::string> ingress_enforced_by, egress_enforced_by;  // "Kind ns/name"
};

struct ResolvedPolicy {
  std::map<policy_key, ResolvedEntry, PolicyKeyLess> entries;
  std::map<uint16_t, EndpointPolicy> endpoints;  // by endpoint id
};

// Every CIDR (and except) prefix the rules name: each needs an identity and an ipcache entry.
std::vector<endpoint::Ipv4Prefix> cidr_prefixes(const std::vector<PolicyRule>& rules);

ResolvedPolicy resolve(const ResolverInput& input);

// The verdict the datapath reaches for one packet direction, with the same
// lookup order as bpf/lib/policy.h, over resolved entries.
struct Verdict {
  bool allowed = true;
  uint8_t drop_reason = 0;           // DROP_POLICY_DENY or DROP_POLICY_DENIED when denied
  const ResolvedEntry* entry = nullptr;  // the entry that decided, if one did
  policy_key key{};                  // its key
};
// peer_cidr_identity: the identity of the longest policy CIDR holding the
// peer's address (0 when none), looked up between the exact and the "any" entry.
// peer_endpoint: the destination's endpoint id when it is a local pod (egress: its
// named ports), 0 otherwise.
Verdict evaluate(const ResolvedPolicy& resolved, uint16_t endpoint_id, uint8_t direction, uint32_t peer_identity,
                 uint8_t protocol, uint16_t port, uint32_t peer_cidr_identity = 0, uint16_t peer_endpoint = 0);

// The entries the datapath's lookups find (exact peer, destination endpoint, peer CIDR, any
// peer), each the longest match, without deciding between them: the L7 proxy needs all of
// their rules.
std::vector<const ResolvedEntry*> matching_entries(const ResolvedPolicy& resolved, uint16_t endpoint_id,
                                                   uint8_t direction, uint32_t peer_identity, uint8_t protocol,
                                                   uint16_t port, uint32_t peer_cidr_identity = 0,
                                                   uint16_t peer_endpoint = 0);

std::string policy_name(const std::string& kind, const std::string& ns, const std::string& name);

// A policy key's protocol and port (range), as `bpf policy` and apply's notes print it: "80/TCP", "8000-8007/TCP", "ANY/UDP", "ANY".
std::string port_text(const policy_key& k);

}  // namespace pilus::policy
