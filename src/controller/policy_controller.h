// Policies: the desired policy objects, resolved against the node's endpoints and identities
// into the policy map and the policy_cidrs map (through their one writers). reconcile() is the
// same after an apply, a delete and a restart: CIDR prefixes first, then new and changed entries
// beside the live ones, then the caller's step (endpoint flags), then the stale entries removed.
// The caller (the agent) holds its lock.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/v1/apply.h"
#include "controller/store_writer.h"
#include "datapath/policy_cidr_map.h"
#include "datapath/policy_map.h"
#include "endpoint/endpoint.h"
#include "identity/identity_allocator.h"
#include "manifest/document.h"
#include "policy/policy_resolver.h"
#include "policy/policy_rule.h"

namespace pilus::controller {

class PolicyController {
 public:
  PolicyController(const datapath::Datapath& datapath, identity::IdentityAllocator& identities, StoreWriter& store);

  struct Desired {
    manifest::Document doc;
    policy::ConvertedPolicy converted;
  };
  using AddUndo = std::function<void(std::function<void()>)>;

  void restore(const store::Store& store);
  // Records a policy converted by the plan (created, configured or unchanged, in `results`).
  void apply(const manifest::Document& doc, policy::ConvertedPolicy converted, std::vector<api::v1::ObjectResult>& results,
             const AddUndo& add_undo);
  // Deletes a policy if it exists (a result line in `results`); false when there is none.
  bool remove(const std::string& key, std::vector<api::v1::ObjectResult>& results);
  // Deletes the namespaced policies of namespace `ns` (a namespace takes them with it).
  void remove_namespace(const std::string& ns, std::vector<api::v1::ObjectResult>& results);
  const std::map<std::string, Desired>& desired() const { return policies_; }

  // Default-deny flags (ENDPOINT_F_*) for an endpoint with these labels, before reconcile()
  // resolves its entries: it fails closed wherever a policy selects it.
  uint16_t initial_flags(const identity::LabelSet& labels) const;
  void set_endpoint_flags(uint16_t endpoint_id, uint16_t flags) { resolved_.endpoints[endpoint_id] = {flags, {}, {}}; }
  // Every policy's rules and default-deny records, appended to `in` (before any other rule).
  void add_rules(policy::ResolverInput& in) const;

  // Resolves `input` (rules from add_rules, endpoints, identities; CIDR identities are this
  // controller's) and writes the maps; `between` runs once the new entries are in, before the
  // stale ones go. Throws, writing no policy entry, when the policy map is too small.
  void reconcile(policy::ResolverInput input, const std::function<void()>& between);

  const policy::ResolvedPolicy& resolved() const { return resolved_; }
  const std::vector<policy::PolicyRule>& rules() const { return rules_; }
  const std::map<endpoint::Ipv4Prefix, uint32_t>& cidr_identities() const { return cidr_identities_; }
  // The last apply refused because the policy map was too small ("" since an apply succeeded).
  const std::string& refusal() const { return refusal_; }
  void clear_refusal() { refusal_.clear(); }
  size_t map_max_entries() const { return map_.max_entries(); }

  // Allows that the other end's policy cancels (egress allowed to a pod whose ingress denies it,
  // or the reverse), for rules of the named policies ("Kind ns/name"): apply prints them.
  // `pods`: the local pods by "namespace/name".
  std::vector<std::string> one_sided_allow_notes(const std::set<std::string>& policies,
                                                 const std::map<std::string, const endpoint::Endpoint*>& pods) const;

 private:
  StoreWriter& store_;
  const datapath::Datapath& datapath_;
  identity::IdentityAllocator& identities_;
  datapath::PolicyMap map_;
  datapath::PolicyCidrMap cidr_map_;
  std::map<std::string, Desired> policies_;  // key: Kind/namespace/name
  std::vector<policy::PolicyRule> rules_;   // all policies' rules, as resolved
  policy::ResolvedPolicy resolved_;
  std::map<endpoint::Ipv4Prefix, uint32_t> cidr_identities_;
  std::string refusal_;
};

}  // namespace pilus::controller
