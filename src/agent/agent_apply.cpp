// apply / delete: validate everything, plan against the current state, then
// change it; a failure part way undoes what this call did (all or nothing).
#include <functional>
#include <set>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/batch_scope.h"
#include "common/error.h"
#include "policy/policy_conversion.h"

namespace pilus::agent {

namespace {

nlohmann::json result(const std::string& kind, const std::string& ns, const std::string& name,
                      const std::string& action) {
  nlohmann::json r = {{"kind", kind}, {"name", name}, {"action", action}};
  if (!ns.empty()) r["namespace"] = ns;
  return r;
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

std::string policy_key_of(const manifest::Document& doc) {
  return doc.kind + "/" + (manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "") + "/" + doc.name();
}

}  // namespace

nlohmann::json Agent::apply(const std::vector<manifest::Source>& sources) {
  auto objects = manifest::parse_all(sources);
  require_handled_kinds(objects);
  Lock lock(mutex_);

  // Plan: every check that can fail runs before anything changes.
  std::set<std::string> known_ns = {"default"};
  for (const auto& [name, ns] : namespaces_) known_ns.insert(name);
  for (const auto& [doc, obj] : objects)
    if (auto* ns = std::get_if<manifest::NamespaceObject>(&obj)) known_ns.insert(ns->name);
  size_t new_pods = 0;
  for (const auto& [doc, obj] : objects) {
    const auto* pod = std::get_if<manifest::Pod>(&obj);
    if (!pod) continue;
    if (auto it = pods_.find(pod->ns + "/" + pod->name); it != pods_.end()) {
      if (it->second.doc.body.value("spec", nlohmann::json()) != doc.body.value("spec", nlohmann::json()))
        fail("{}: spec: a pod's spec cannot change once created (as in Kubernetes); delete the pod and apply it again",
             doc.describe());
      continue;
    }
    if (!known_ns.count(pod->ns))
      fail("{}: metadata.namespace: namespace \"{}\" not found; apply a Namespace manifest first (or in the same file)",
           doc.describe(), pod->ns);
    new_pods++;
  }
  std::map<std::string, policy::ConvertedPolicy> converted;
  for (const auto& [doc, obj] : objects)
    if (policy::is_policy(obj)) {
      if (manifest::is_namespaced_kind(doc.kind) && !known_ns.count(doc.ns()))
        fail("{}: metadata.namespace: namespace \"{}\" not found; apply a Namespace manifest first (or in the same file)",
             doc.describe(), doc.ns());
      converted[policy_key_of(doc)] = policy::convert_policy(obj);
    }
  plan_services(objects);
  if (new_pods > ipam_.available())
    fail("pod CIDR {} is exhausted: {} new pods requested, {} addresses left", ipam_.cidr(), new_pods,
         ipam_.available());

  nlohmann::json results = nlohmann::json::array();
  UndoLog undo;
  // Store writes are staged and committed once, after the datapath took the change: one round of
  // syncs for the whole apply. A created pod is the exception (its network exists as soon as it
  // is made, so the store must know it at once): it commits what is staged so far.
  store::WriteBatch writes;
  BatchScope batch_scope(batch_, writes);
  bool wrote_to_disk = false;  // some commit of this apply started: a rollback must write too
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
      wrote_to_disk = true;
      store_.commit(writes);
      undo.add([this, key] {
        destroy_endpoint(pods_.at(key).ep);
        pods_.erase(key);
        store_erase("pods", key);
      });
      results.push_back(result("Pod", pod->ns, pod->name, "created"));
    }

    for (const auto& [doc, obj] : objects)
      if (const auto* svc = std::get_if<manifest::Service>(&obj))
        apply_service(doc, *svc, results, [&undo](std::function<void()> step) { undo.add(std::move(step)); });

    nlohmann::json notes = nlohmann::json::array(), warnings = nlohmann::json::array();
    for (const auto& [doc, obj] : objects) {
      if (!policy::is_policy(obj)) continue;
      const std::string key = policy_key_of(doc);
      const std::string ns = manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "";
      for (const auto& n : converted[key].notes) notes.push_back(n);
      for (const auto& w : converted[key].warnings) warnings.push_back(w);
      auto it = policies_.find(key);
      if (it != policies_.end() && it->second.doc.body == doc.body) {
        results.push_back(result(doc.kind, ns, doc.name(), "unchanged"));
        continue;
      }
      std::optional<PolicyState> old;
      if (it != policies_.end()) old = it->second;
      policies_.insert_or_assign(key, PolicyState{doc, std::move(converted[key])});  // not a second copy of every rule
      store_put("policies", key, doc.body);
      undo.add([this, key, old] {
        if (old) {
          policies_.insert_or_assign(key, *old);
          store_put("policies", key, old->doc.body);
        } else {
          policies_.erase(key);
          store_erase("policies", key);
        }
      });
      results.push_back(result(doc.kind, ns, doc.name(), old ? "configured" : "created"));
    }
    regenerate_policy();
    sync_services();
    wrote_to_disk = wrote_to_disk || !writes.empty();
    store_.commit(writes);
    std::set<std::string> applied;
    for (const auto& [doc, obj] : objects)
      if (policy::is_policy(obj))
        applied.insert(policy::policy_name(doc.kind, manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "", doc.name()));
    for (const auto& n : one_sided_allow_notes(applied)) notes.push_back(n);
    nlohmann::json response = {{"results", results}};
    if (!notes.empty()) response["notes"] = notes;
    if (!warnings.empty()) response["warnings"] = warnings;
    return response;
  } catch (...) {
    // What was only staged never reaches the disk; the undo steps stage the old documents, which
    // need writing only if part of this apply was committed.
    writes.clear();
    undo.rollback();
    try {
      if (wrote_to_disk) store_.commit(writes);
    } catch (const std::exception& e) {
      spdlog::error("restoring the store after a failed apply: {}", e.what());
    }
    writes.clear();
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

nlohmann::json Agent::remove(const std::vector<manifest::Source>& sources) {
  auto objects = manifest::parse_all(sources);
  require_handled_kinds(objects);
  Lock lock(mutex_);
  for (const auto& [doc, obj] : objects) {
    if (const auto* ns = std::get_if<manifest::NamespaceObject>(&obj); ns && ns->name == "default")
      fail("{}: the default namespace cannot be deleted", doc.describe());
  }
  nlohmann::json results = nlohmann::json::array();
  // Erases are staged and committed once (a deleted pod's at once: its network is gone).
  // delete is not all or nothing: what was removed from memory is committed even on a failure.
  store::WriteBatch writes;
  BatchScope batch_scope(batch_, writes);
  CommitOnUnwind commit_on_unwind(store_, writes);
  auto delete_pod = [&](const std::string& key) {
    PodState& st = pods_.at(key);
    destroy_endpoint(st.ep);
    store_erase("pods", key);
    store_.commit(writes);
    results.push_back(result("Pod", st.ep.ns, st.ep.name, "deleted"));
    pods_.erase(key);
  };
  // Pods leave their services before their network goes, so no new connection is sent to a
  // backend in the middle of being deleted.
  bool leaving = false;
  for (auto& [key, st] : pods_) {
    for (const auto& [doc, obj] : objects) {
      const auto* pod = std::get_if<manifest::Pod>(&obj);
      const auto* ns = std::get_if<manifest::NamespaceObject>(&obj);
      if ((pod && pod->ns + "/" + pod->name == key) || (ns && ns->name == st.ep.ns)) st.leaving = leaving = true;
    }
  }
  if (leaving) sync_services();
  // Pods first, then namespaces (which take their remaining pods with them).
  for (const auto& [doc, obj] : objects) {
    const auto* pod = std::get_if<manifest::Pod>(&obj);
    if (!pod) continue;
    const std::string key = pod->ns + "/" + pod->name;
    if (pods_.count(key))
      delete_pod(key);
    else
      results.push_back(result("Pod", pod->ns, pod->name, "not found"));
  }
  for (const auto& [doc, obj] : objects) {
    const auto* svc = std::get_if<manifest::Service>(&obj);
    if (!svc) continue;
    if (services_.count(svc->ns + "/" + svc->name))
      delete_service(svc->ns + "/" + svc->name, results);
    else
      results.push_back(result("Service", svc->ns, svc->name, "not found"));
  }
  for (const auto& [doc, obj] : objects) {
    if (!policy::is_policy(obj)) continue;
    const std::string key = policy_key_of(doc);
    const std::string ns = manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "";
    if (policies_.erase(key)) {
      store_erase("policies", key);
      results.push_back(result(doc.kind, ns, doc.name(), "deleted"));
    } else {
      results.push_back(result(doc.kind, ns, doc.name(), "not found"));
    }
  }
  for (const auto& [doc, obj] : objects) {
    const auto* ns = std::get_if<manifest::NamespaceObject>(&obj);
    if (!ns) continue;
    std::vector<std::string> keys;
    for (const auto& [key, st] : pods_)
      if (st.ep.ns == ns->name) keys.push_back(key);
    for (const auto& key : keys) delete_pod(key);
    keys.clear();
    for (const auto& [key, st] : services_)
      if (st.svc.ns == ns->name) keys.push_back(key);
    for (const auto& key : keys) delete_service(key, results);
    // Like Kubernetes, a namespace takes its namespaced policies with it.
    for (auto it = policies_.begin(); it != policies_.end();) {
      const auto& pdoc = it->second.doc;
      if (manifest::is_namespaced_kind(pdoc.kind) && pdoc.ns() == ns->name) {
        store_erase("policies", it->first);
        results.push_back(result(pdoc.kind, ns->name, pdoc.name(), "deleted"));
        it = policies_.erase(it);
      } else {
        ++it;
      }
    }
    if (namespaces_.erase(ns->name)) {
      namespace_docs_.erase(ns->name);
      store_erase("namespaces", ns->name);
      results.push_back(result("Namespace", "", ns->name, "deleted"));
    } else {
      results.push_back(result("Namespace", "", ns->name, "not found"));
    }
  }
  store_.commit(writes);
  regenerate_policy();
  sync_services();
  return {{"results", results}};
}

}  // namespace pilus::agent
