// The policies' part of an apply's plan: every policy of the apply converted to rules (which
// refuses bad rules with the field named), in a namespace that exists. Pure: changes nothing
// (unit-tested without root).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "controller/objects.h"
#include "policy/policy_rule.h"

namespace pilus::controller {

// The key a policy is stored under: "Kind/namespace/name", the namespace empty for a clusterwide kind.
std::string policy_key_of(const manifest::Document& doc);

// The converted policies of `objects` by key; their conversion warnings are appended to `warnings`.
std::map<std::string, policy::ConvertedPolicy> plan_policies(const Objects& objects,
                                                             const std::set<std::string>& known_namespaces,
                                                             std::vector<std::string>& warnings);

}  // namespace pilus::controller
