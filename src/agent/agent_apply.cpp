// apply / delete: validate everything, plan against the current state, then
// change it; a failure part way undoes what this call did (all or nothing).
#include <functional>
#include <set>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/batch_scope.h"
#include "agent/crash_point.h"
#include "agent/pod_networks.h"
#include "common/error.h"
#include "controller/policy_plan.h"
#include "policy/policy_conversion.h"

namespace pilus::agent {

namespace {

api::v1::ObjectResult result(const std::string& kind, const std::string& ns, const std::string& name,
                             const std::string& action) {
  return {kind, ns, name, action};
}

// Runs the undo steps, newest first, when a change fails part way.
class UndoLog {
 public:
  void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
  void rollback() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      try {
        (*it)();
      } catch (const std::exception& e) {
        spdlog::error("undo after a failed apply: {}", e.what());
      }
    }
  }

 private:
  std::vector<std::function<void()>> steps_;
};

// Kinds the manifest layer knows but the agent does not act on yet are
// refused: accepting an object without enforcing it would be a silent hole.
void require_handled_kinds(const std::vector<std::pair<manifest::Document, manifest::Object>>& objects) {
  for (const auto& [doc, obj] : objects) {
    if (!std::holds_alternative<manifest::NamespaceObject>(obj) && !std::holds_alternative<manifest::Pod>(obj) &&
        !std::holds_alternative<manifest::Service>(obj) && !policy::is_policy(obj))
      fail("{}: kind {} is not enforced by this pilus version yet; nothing was applied", doc.describe(), doc.kind);
  }
}

using controller::policy_key_of;

}  // namespace

api::v1::ApplyResponse Agent::apply(std::vector<manifest::Source> sources, bool dry_run) {
  std::vector<std::string> warnings;
  std::vector<std::string> manifest_warnings;
  auto objects = manifest::parse_all(sources, &manifest_warnings);
  std::vector<manifest::Source>().swap(sources);  // parsed: the text is not needed any more
  for (const auto& w : manifest_warnings) warnings.push_back(w);
  require_handled_kinds(objects);
  Lock lock(mutex_);

  // Plan: every check that can fail runs before anything changes.
  std::set<std::string> known_ns = {"default"};
  for (const auto& [name, ns] : namespaces_) known_ns.insert(name);
  for (const auto& [doc, obj] : objects)
    if (auto* ns = std::get_if<manifest::NamespaceObject>(&obj)) known_ns.insert(ns->name);
  size_t new_pods = 0;
  std::vector<std::pair<std::string, PodNetwork>> recorded;  // the pods this apply creates
  for (const auto& [doc, obj] : objects) {
    const auto* pod = std::get_if<manifest::Pod>(&obj);
    if (!pod) continue;
    if (pod->runtime_class == manifest::kRuntimeClassCni) continue;  // a runtime's container: apply_runtime_pod
    if (auto it = pods_.find(pod->ns + "/" + pod->name); it != pods_.end()) {
      if (it->second.doc.body.value("spec", nlohmann::json()) != doc.body.value("spec", nlohmann::json()))
        fail("{}: spec: a pod's spec cannot change once created (as in Kubernetes); delete the pod and apply it again",
             doc.describe());
      continue;
    }
    if (!known_ns.count(pod->ns))
      fail("{}: metadata.namespace: namespace \"{}\" not found; apply a Namespace manifest first (or in the same file)",
           doc.describe(), pod->ns);
    // Checked before the pod's network is recorded as this agent's (below): a name taken by
    // another agent or run must never be recorded, or a crash would have it removed.
    PodNetwork net = pod_network_of(pod->ns, pod->name);
    if (datapath::netns_exists(net.netns) || datapath::link_ifindex(net.host_if) != 0)
      fail("{}: network namespace {} or link {} already exists on this node (left by another run? try `pilus "
           "cleanup`)",
           doc.describe(), net.netns, net.host_if);
    recorded.emplace_back(pod->ns + "/" + pod->name, net);
    new_pods++;
  }
  std::vector<std::string> policy_warnings;
  auto converted = controller::plan_policies(objects, known_ns, policy_warnings);
  for (const auto& w : policy_warnings) warnings.push_back(w);
  service_controller_->plan(objects, known_ns);
  if (new_pods > ipam_.available())
    fail("pod CIDR {} is exhausted: {} new pods requested, {} addresses left", ipam_.cidr(), new_pods,
         ipam_.available());
  if (dry_run) return {dry_run_results(objects), warnings, {}, true};

  std::vector<api::v1::ObjectResult> results;
  UndoLog undo;
  // Store writes are staged and committed in one transaction, after the datapath took the change:
  // a crash before it leaves the store as it was, after it all of the apply. The new pods'
  // networks are recorded first (their own small transaction), so that the kernel objects a crash
  // leaves for pods never committed are recognised and removed at the next start.
  {
    store::WriteBatch record;
    for (const auto& [key, net] : recorded) record.put(kPodNetworks, key, net);
    store_->commit(record);
  }
  store::WriteBatch writes;
  BatchScope batch_scope(store_writer_.batch_slot(), writes);
  size_t pods_created = 0;
  auto add_undo = [&undo](std::function<void()> step) { undo.add(std::move(step)); };
  try {
    for (const auto& [doc, obj] : objects) {
      const auto* ns = std::get_if<manifest::NamespaceObject>(&obj);
      if (!ns) continue;
      auto it = namespaces_.find(ns->name);
      if (it != namespaces_.end() && it->second.labels == ns->labels && it->second.annotations == ns->annotations) {
        results.push_back(result("Namespace", "", ns->name, "unchanged"));
        continue;
      }
      std::optional<manifest::NamespaceObject> old;
      std::optional<manifest::Document> old_doc;
      if (it != namespaces_.end()) old = it->second, old_doc = namespace_docs_.at(ns->name);
      auto relabel_pods = [this, name = ns->name] {
        for (auto& [key, st] : pods_)
          if (st.ep.ns == name) {
            relabel_endpoint(st.ep);
            save_pod(st.doc, st.ep);
          }
      };
      namespaces_.insert_or_assign(ns->name, *ns);
      namespace_docs_.insert_or_assign(ns->name, doc);
      store_put("namespaces", ns->name, doc.body);
      undo.add([this, name = ns->name, old, old_doc, relabel_pods] {
        if (old) {
          namespaces_.insert_or_assign(name, *old);
          namespace_docs_.insert_or_assign(name, *old_doc);
          store_put("namespaces", name, old_doc->body);
        } else {
          namespaces_.erase(name);
          namespace_docs_.erase(name);
          store_erase("namespaces", name);
        }
        relabel_pods();
      });
      relabel_pods();
      results.push_back(result("Namespace", "", ns->name, old ? "configured" : "created"));
    }

    for (const auto& [doc, obj] : objects) {
      const auto* pod = std::get_if<manifest::Pod>(&obj);
      if (!pod) continue;
      if (apply_runtime_pod(doc, *pod, results, [&undo](std::function<void()> step) { undo.add(std::move(step)); }))
        continue;
      const std::string key = pod->ns + "/" + pod->name;
      if (auto it = pods_.find(key); it != pods_.end()) {
        PodState& st = it->second;
        if (st.pod.labels == pod->labels && st.pod.annotations == pod->annotations) {
          results.push_back(result("Pod", pod->ns, pod->name, "unchanged"));
          continue;
        }
        PodState before = st;
        st.pod = *pod;
        st.doc = doc;
        relabel_endpoint(st.ep);
        save_pod(st.doc, st.ep);
        undo.add([this, key, before] {
          PodState& s = pods_.at(key);
          s.pod = before.pod;
          s.doc = before.doc;
          relabel_endpoint(s.ep);
          save_pod(s.doc, s.ep);
        });
        results.push_back(result("Pod", pod->ns, pod->name, "configured"));
        continue;
      }
      endpoint::Endpoint ep;
      try {
        ep = create_endpoint(*pod);
      } catch (const std::exception& e) {
        fail("{}: {}", doc.describe(), e.what());
      }
      pods_.insert_or_assign(key, PodState{doc, *pod, ep});
      save_pod(doc, ep);
      crash_point("pod", ++pods_created);
      undo.add([this, key] {
        destroy_endpoint(pods_.at(key).ep);
        pods_.erase(key);
        store_erase("pods", key);
      });
      results.push_back(result("Pod", pod->ns, pod->name, "created"));
    }

    for (const auto& [doc, obj] : objects)
      if (const auto* svc = std::get_if<manifest::Service>(&obj))
        service_controller_->apply(doc, *svc, results, add_undo);

    std::vector<std::string> notes;
    for (const auto& [doc, obj] : objects) {
      if (!policy::is_policy(obj)) continue;
      const std::string key = policy_key_of(doc);
      for (const auto& n : converted[key].notes) notes.push_back(n);
      policy_controller_->apply(doc, std::move(converted[key]), results, add_undo);  // not a second copy of every rule
    }
    regenerate_policy();
    sync_services();
    crash_point("commit", 1);
    store_->commit(writes);
    crash_point("committed", 1);
    std::set<std::string> applied;
    for (const auto& [doc, obj] : objects)
      if (policy::is_policy(obj))
        applied.insert(policy::policy_name(doc.kind, manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "", doc.name()));
    std::map<std::string, const endpoint::Endpoint*> local_pods;
    for (const auto& [key, st] : pods_) local_pods.emplace(key, &st.ep);
    for (const auto& n : policy_controller_->one_sided_allow_notes(applied, local_pods)) notes.push_back(n);
    policy_controller_->clear_refusal();  // status reports a refusal only until an apply succeeds
    return {std::move(results), std::move(warnings), std::move(notes), false};
  } catch (...) {
    // Nothing of this apply was committed but the pod-networks records: what was staged is
    // dropped, the undo steps' writes too. A record goes once its pod's network is gone (one
    // whose removal failed stays, for the next start to remove).
    writes.clear();
    undo.rollback();
    writes.clear();
    try {
      store::WriteBatch erase;
      for (const auto& [key, net] : recorded) {
        if (!datapath::netns_exists(net.netns) && datapath::link_ifindex(net.host_if) == 0) erase.erase(kPodNetworks, key);
      }
      store_->commit(erase);
    } catch (const std::exception& e) {
      spdlog::error("erasing the records of pods a failed apply did not create: {}", e.what());
    }
    try {
      regenerate_policy();
    } catch (const std::exception& e) {
      spdlog::error("restoring the policy after a failed apply: {}", e.what());
    }
    try {
      sync_services();
    } catch (const std::exception& e) {
      spdlog::error("restoring the services after a failed apply: {}", e.what());
    }
    throw;
  }
}

api::v1::DeleteResponse Agent::remove(const std::vector<manifest::Source>& sources) {
  auto objects = manifest::parse_all(sources);
  require_handled_kinds(objects);
  Lock lock(mutex_);
  for (const auto& [doc, obj] : objects) {
    if (const auto* ns = std::get_if<manifest::NamespaceObject>(&obj); ns && ns->name == "default")
      fail("{}: the default namespace cannot be deleted", doc.describe());
  }
  std::vector<api::v1::ObjectResult> results;
  // Erases are staged and committed in one transaction. A deleted pod's network is destroyed
  // after that commit (its pod-networks record goes last): a crash in between leaves orphans that
  // the next start removes (pod_networks.h). delete is not all or nothing: what was removed from
  // memory is committed, and its pods destroyed, even on a failure.
  store::WriteBatch writes;
  BatchScope batch_scope(store_writer_.batch_slot(), writes);
  std::vector<endpoint::Endpoint> doomed;
  auto destroy_doomed = [&] {
    for (const auto& ep : doomed) {
      try {
        destroy_endpoint(ep);
        store_erase(kPodNetworks, ep.key());
      } catch (const std::exception& e) {
        spdlog::error("deleting pod {}: {}", ep.key(), e.what());
      }
    }
    doomed.clear();
    store_->commit(writes);
  };
  struct OnUnwind {
    std::function<void()> run;
    int exceptions = std::uncaught_exceptions();
    ~OnUnwind() {
      if (std::uncaught_exceptions() <= exceptions) return;
      try {
        run();
      } catch (const std::exception& e) {
        spdlog::error("destroying the pods of a failed delete: {}", e.what());
      }
    }
  } destroy_on_unwind{destroy_doomed};  // runs after commit_on_unwind
  CommitOnUnwind commit_on_unwind(*store_, writes);
  auto delete_pod = [&](const std::string& key) {
    PodState& st = pods_.at(key);
    store_erase("pods", key);
    results.push_back(result("Pod", st.ep.ns, st.ep.name, "deleted"));
    doomed.push_back(st.ep);
    pods_.erase(key);
  };
  // Pods leave their services before their network goes, so no new connection is sent to a
  // backend in the middle of being deleted.
  bool leaving = false;
  for (auto& [key, st] : pods_) {
    for (const auto& [doc, obj] : objects) {
      const auto* pod = std::get_if<manifest::Pod>(&obj);
      const auto* ns = std::get_if<manifest::NamespaceObject>(&obj);
      if (pod && pod->runtime_class == manifest::kRuntimeClassCni) continue;  // the container stays
      if ((pod && pod->ns + "/" + pod->name == key) || (ns && ns->name == st.ep.ns)) st.leaving = leaving = true;
    }
  }
  if (leaving) sync_services();
  // Pods first, then namespaces (which take their remaining pods with them).
  for (const auto& [doc, obj] : objects) {
    const auto* pod = std::get_if<manifest::Pod>(&obj);
    if (!pod) continue;
    const std::string key = pod->ns + "/" + pod->name;
    if (pod->runtime_class == manifest::kRuntimeClassCni) {
      if (!delete_runtime_pod(key, results)) results.push_back(result("Pod", pod->ns, pod->name, "not found"));
      continue;
    }
    if (pods_.count(key))
      delete_pod(key);
    else
      results.push_back(result("Pod", pod->ns, pod->name, "not found"));
  }
  for (const auto& [doc, obj] : objects) {
    const auto* svc = std::get_if<manifest::Service>(&obj);
    if (!svc) continue;
    if (!service_controller_->remove(svc->ns + "/" + svc->name, results))
      results.push_back(result("Service", svc->ns, svc->name, "not found"));
  }
  for (const auto& [doc, obj] : objects) {
    if (!policy::is_policy(obj)) continue;
    const std::string key = policy_key_of(doc);
    const std::string ns = manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "";
    if (!policy_controller_->remove(key, results)) results.push_back(result(doc.kind, ns, doc.name(), "not found"));
  }
  for (const auto& [doc, obj] : objects) {
    const auto* ns = std::get_if<manifest::NamespaceObject>(&obj);
    if (!ns) continue;
    std::vector<std::string> keys;
    for (const auto& [key, st] : pods_)
      if (st.ep.ns == ns->name) keys.push_back(key);
    for (const auto& key : keys) delete_pod(key);
    for (const auto& key : service_controller_->keys_in_namespace(ns->name)) service_controller_->remove(key, results);
    // Like Kubernetes, a namespace takes its namespaced policies with it.
    policy_controller_->remove_namespace(ns->name, results);
    if (namespaces_.erase(ns->name)) {
      namespace_docs_.erase(ns->name);
      store_erase("namespaces", ns->name);
      results.push_back(result("Namespace", "", ns->name, "deleted"));
    } else {
      results.push_back(result("Namespace", "", ns->name, "not found"));
    }
  }
  crash_point("delete-commit", 1);
  store_->commit(writes);
  crash_point("delete-committed", 1);
  destroy_doomed();
  regenerate_policy();
  sync_services();
  return {std::move(results)};
}

}  // namespace pilus::agent
