// `apply --dry-run=server`: what apply would do to each object, read from the live state after
// the plan's checks passed; nothing is written, nothing reaches the kernel.
#include "agent/agent.h"
#include "controller/policy_plan.h"
#include "policy/policy_conversion.h"

namespace pilus::agent {

std::vector<api::v1::ObjectResult> Agent::dry_run_results(
    const std::vector<std::pair<manifest::Document, manifest::Object>>& objects) const {
  std::vector<api::v1::ObjectResult> results;
  auto add = [&](const manifest::Document& doc, const std::string& ns, bool exists, bool same) {
    results.push_back({doc.kind, ns, doc.name(), !exists ? "created" : same ? "unchanged" : "configured"});
  };
  // The order apply reports in: namespaces, pods, services, policies.
  for (const auto& [doc, obj] : objects)
    if (const auto* ns = std::get_if<manifest::NamespaceObject>(&obj)) {
      auto it = namespaces_.find(ns->name);
      add(doc, "", it != namespaces_.end(),
          it != namespaces_.end() && it->second.labels == ns->labels && it->second.annotations == ns->annotations);
    }
  for (const auto& [doc, obj] : objects)
    if (const auto* pod = std::get_if<manifest::Pod>(&obj)) {
      auto it = pods_.find(pod->ns + "/" + pod->name);
      add(doc, pod->ns, it != pods_.end(),
          it != pods_.end() && it->second.pod.labels == pod->labels && it->second.pod.annotations == pod->annotations);
    }
  for (const auto& [doc, obj] : objects)
    if (const auto* svc = std::get_if<manifest::Service>(&obj)) {
      const auto* existing = service_controller_->find(svc->ns + "/" + svc->name);
      add(doc, svc->ns, existing != nullptr, existing && existing->doc.body == doc.body);
    }
  for (const auto& [doc, obj] : objects) {
    if (!policy::is_policy(obj)) continue;
    const bool namespaced = manifest::is_namespaced_kind(doc.kind);
    const auto& policies = policy_controller_->desired();
    auto it = policies.find(controller::policy_key_of(doc));
    add(doc, namespaced ? doc.ns() : "", it != policies.end(), it != policies.end() && it->second.doc.body == doc.body);
  }
  return results;
}

}  // namespace pilus::agent
