// Stable references from policy map entries to the rules that made them, so a drop
// event decoded later still names its cause: the deny rule (kind, namespace, name, rule
// index), or the policies that made the direction default deny.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/policy_rule.h"

namespace pilus::policy {

struct PolicyRef {
  std::string kind, ns, name;
  int rule_index = -1;  // -1: the policy as a whole (it made a direction default deny)
  std::string path;     // "spec.egressDeny[0].toPorts[1]"; empty with rule_index -1

  bool operator==(const PolicyRef&) const = default;
};

PolicyRef ref_of(const PolicyRule& rule);
PolicyRef ref_of(const DefaultDeny& dd);

// "CiliumNetworkPolicy default/deny-db spec.egressDeny[0]", "NetworkPolicy default/allow-http".
std::string to_string(const PolicyRef& ref);

// Ids are a hash of the content (probed on the rare collision), so one rule keeps its id
// across regenerations and agent restarts, and an id once given always means the same
// thing: a drop decoded after its policy changed or went away still names what the
// datapath held. Never 0 (0 is "no reference"). Ids are never forgotten while the agent
// runs (one small record per distinct rule or default-deny set). Thread-safe.
class PolicyRefTable {
 public:
  uint32_t intern(const std::vector<PolicyRef>& refs);
  std::vector<PolicyRef> lookup(uint32_t id) const;  // empty when unknown

 private:
  mutable std::mutex mutex_;
  std::unordered_map<uint32_t, std::vector<PolicyRef>> by_id_;
};

}  // namespace pilus::policy
