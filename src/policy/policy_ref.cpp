#include "policy/policy_ref.h"

#include <fmt/format.h>

namespace pilus::policy {

PolicyRef ref_of(const PolicyRule& rule) {
  return PolicyRef{rule.policy_kind, rule.policy_namespace, rule.policy_name, rule.rule_index, rule.source_path};
}

PolicyRef ref_of(const DefaultDeny& dd) { return PolicyRef{dd.policy_kind, dd.policy_namespace, dd.policy_name, -1, {}}; }

std::string to_string(const PolicyRef& ref) {
  std::string out = ref.kind + " " + (ref.ns.empty() ? ref.name : ref.ns + "/" + ref.name);
  if (!ref.path.empty()) out += " " + ref.path;
  return out;
}

namespace {

// FNV-1a over the fields, each ended by a byte no field contains.
uint32_t hash_of(const std::vector<PolicyRef>& refs) {
  uint32_t h = 2166136261u;
  auto add = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
  };
  for (const PolicyRef& r : refs) {
    add(r.kind);
    add(r.ns);
    add(r.name);
    add(std::to_string(r.rule_index));
    add(r.path);
  }
  return h;
}

}  // namespace

uint32_t PolicyRefTable::intern(const std::vector<PolicyRef>& refs) {
  std::lock_guard lock(mutex_);
  uint32_t id = hash_of(refs);
  for (;; id++) {
    if (id == 0) continue;
    auto [it, added] = by_id_.try_emplace(id, refs);
    if (added || it->second == refs) return id;
  }
}

std::vector<PolicyRef> PolicyRefTable::lookup(uint32_t id) const {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? std::vector<PolicyRef>{} : it->second;
}

}  // namespace pilus::policy
