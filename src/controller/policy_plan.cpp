#include "controller/policy_plan.h"

#include "common/error.h"
#include "policy/policy_conversion.h"

namespace pilus::controller {

std::string policy_key_of(const manifest::Document& doc) {
  return doc.kind + "/" + (manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "") + "/" + doc.name();
}

std::map<std::string, policy::ConvertedPolicy> plan_policies(const Objects& objects,
                                                             const std::set<std::string>& known_namespaces,
                                                             std::vector<std::string>& warnings) {
  std::map<std::string, policy::ConvertedPolicy> converted;
  for (const auto& [doc, obj] : objects)
    if (policy::is_policy(obj)) {
      if (manifest::is_namespaced_kind(doc.kind) && !known_namespaces.count(doc.ns()))
        fail("{}: metadata.namespace: namespace \"{}\" not found; apply a Namespace manifest first (or in the same file)",
             doc.describe(), doc.ns());
      auto& c = converted[policy_key_of(doc)] = policy::convert_policy(obj);
      for (const auto& w : c.warnings) warnings.push_back(w);
    }
  return converted;
}

}  // namespace pilus::controller
