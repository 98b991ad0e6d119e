#include "controller/policy_controller.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include <fmt/format.h>

#include "abi/drop_reasons.h"
#include "abi/endpoint.h"
#include "abi/metrics.h"
#include "common/error.h"
#include "policy/policy_conversion.h"

namespace pilus::controller {

namespace {

api::v1::ObjectResult result(const manifest::Document& doc, const std::string& action) {
  return {doc.kind, manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "", doc.name(), action};
}

}  // namespace

PolicyController::PolicyController(const datapath::Datapath& datapath, identity::IdentityAllocator& identities,
                                   StoreWriter& store)
    : store_(store), datapath_(datapath), identities_(identities), map_(datapath), cidr_map_(datapath) {}

void PolicyController::restore(const store::Store& store) {
  for (auto& [key, body] : store.list("policies")) {
    manifest::Document doc = manifest::document_from_json(body, "store");
    policies_.insert_or_assign(key, Desired{doc, policy::convert_policy(manifest::parse_object(doc))});
  }
}

void PolicyController::apply(const manifest::Document& doc, policy::ConvertedPolicy converted, std::vector<api::v1::ObjectResult>& results,
                             const AddUndo& add_undo) {
  const std::string key = doc.kind + "/" + (manifest::is_namespaced_kind(doc.kind) ? doc.ns() : "") + "/" + doc.name();
  auto it = policies_.find(key);
  if (it != policies_.end() && it->second.doc.body == doc.body) {
    results.push_back(result(doc, "unchanged"));
    return;
  }
  std::optional<Desired> old;
  if (it != policies_.end()) old = it->second;
  policies_.insert_or_assign(key, Desired{doc, std::move(converted)});  // not a second copy of every rule
  store_.put("policies", key, doc.body);
  add_undo([this, key, old] {
    if (old) {
      policies_.insert_or_assign(key, *old);
      store_.put("policies", key, old->doc.body);
    } else {
      policies_.erase(key);
      store_.erase("policies", key);
    }
  });
  results.push_back(result(doc, old ? "configured" : "created"));
}

bool PolicyController::remove(const std::string& key, std::vector<api::v1::ObjectResult>& results) {
  auto it = policies_.find(key);
  if (it == policies_.end()) return false;
  results.push_back(result(it->second.doc, "deleted"));
  store_.erase("policies", key);
  policies_.erase(it);
  return true;
}

void PolicyController::remove_namespace(const std::string& ns, std::vector<api::v1::ObjectResult>& results) {
  for (auto it = policies_.begin(); it != policies_.end();) {
    const auto& pdoc = it->second.doc;
    if (manifest::is_namespaced_kind(pdoc.kind) && pdoc.ns() == ns) {
      store_.erase("policies", it->first);
      results.push_back(result(pdoc, "deleted"));
      it = policies_.erase(it);
    } else {
      ++it;
    }
  }
}

uint16_t PolicyController::initial_flags(const identity::LabelSet& labels) const {
  uint16_t flags = 0;
  for (const auto& [key, p] : policies_)
    for (const auto& dd : p.converted.default_deny)
      if (dd.subject.matches(labels))
        flags |= dd.direction == policy::Direction::kIngress ? ENDPOINT_F_INGRESS_ENFORCED : ENDPOINT_F_EGRESS_ENFORCED;
  return flags;
}

void PolicyController::add_rules(policy::ResolverInput& in) const {
  for (const auto& [key, p] : policies_) {
    in.rules.insert(in.rules.end(), p.converted.rules.begin(), p.converted.rules.end());
    in.default_deny.insert(in.default_deny.end(), p.converted.default_deny.begin(), p.converted.default_deny.end());
  }
}

void PolicyController::reconcile(policy::ResolverInput input, const std::function<void()>& between) {
  // CIDR peers: an identity and a policy_cidrs prefix for each CIDR a rule names.
  // New identities in one batch: policies name CIDRs by the thousand.
  std::map<endpoint::Ipv4Prefix, uint32_t> cidrs;
  std::vector<endpoint::Ipv4Prefix> fresh;
  std::vector<std::string> fresh_text;
  for (const auto& prefix : policy::cidr_prefixes(input.rules)) {
    auto it = cidr_identities_.find(prefix);
    if (it != cidr_identities_.end()) {
      cidrs[prefix] = it->second;
    } else {
      fresh.push_back(prefix);
      fresh_text.push_back(endpoint::to_string(prefix));
    }
  }
  std::vector<uint32_t> fresh_ids = identities_.allocate_cidrs(fresh_text);
  for (size_t i = 0; i < fresh.size(); i++) cidrs[fresh[i]] = fresh_ids[i];
  cidr_map_.add(cidr_identities_, cidrs);
  // Prefixes no rule names any more stay until the new entries are in place (below).
  std::map<endpoint::Ipv4Prefix, uint32_t> written = cidr_identities_;
  auto remove_gone_prefixes = [&] {
    cidr_map_.remove_gone(written, cidrs);
    std::vector<uint32_t> gone;
    for (const auto& [prefix, id] : written)
      if (!cidrs.count(prefix)) gone.push_back(id);
    identities_.release_all(gone);
  };
  cidr_identities_ = cidrs;
  input.cidr_identities = cidrs;

  policy::ResolvedPolicy next = policy::resolve(input);
  size_t max = map_.max_entries();
  if (next.entries.size() > max) {
    refusal_ = fmt::format("the policy map is full: the policies need {} entries, the map holds {} "
                           "(--policy-map-max); an apply was refused",
                           next.entries.size(), max);
    remove_gone_prefixes();  // as cidr_identities_ no longer holds them
    fail("the policy map is full: these policies need {} entries, the map holds {}; nothing was applied",
         next.entries.size(), max);
  }

  for (const auto& [k, e] : next.entries) {
    auto it = resolved_.entries.find(k);
    if (it == resolved_.entries.end() || std::memcmp(&it->second.value, &e.value, sizeof(policy_entry)) != 0)
      map_.write(k, e.value);
  }
  resolved_ = std::move(next);
  rules_ = std::move(input.rules);
  between();
  // Stale entries go last, and by what the map holds, so leftovers of an
  // earlier agent are found too.
  map_.remove_except([this](const policy_key& k) { return resolved_.entries.count(k) > 0; });
  remove_gone_prefixes();
  // Last: every apply, delete and restore ends here, after its endpoint and ipcache writes
  // too, so connections allowed under the old state are judged again at their next packet.
  datapath_.bump_policy_revision();
}

std::vector<std::string> PolicyController::one_sided_allow_notes(
    const std::set<std::string>& policies, const std::map<std::string, const endpoint::Endpoint*>& pods) const {
  struct Local {
    const std::string* name;
    const endpoint::Endpoint* ep;
  };
  std::map<uint16_t, Local> by_id;
  std::multimap<uint32_t, Local> by_identity;
  for (const auto& [key, ep] : pods) {
    by_id[ep->id] = {&key, ep};
    by_identity.emplace(ep->identity, Local{&key, ep});
  }
  std::set<std::string> notes;
  for (const auto& [k, e] : resolved_.entries) {
    // Only allows of one port or range: "any port" says too little to check the other end.
    if ((e.value.flags & POLICY_F_DENY) || k.prefixlen <= POLICY_PREFIX_ANY_PORT || k.protocol == IPPROTO_ICMP) continue;
    if (k.peer_kind == POLICY_PEER_DEFAULT_DENY || e.rules.empty() || !by_id.count(k.endpoint_id)) continue;
    const auto& rule = rules_[e.rules.front()];
    std::string who = policy::policy_name(rule.policy_kind, rule.policy_namespace, rule.policy_name);
    if (!policies.count(who)) continue;
    const Local& local = by_id.at(k.endpoint_id);
    bool egress = k.direction == METRIC_EGRESS;
    // Peers: the pods of the entry's identity, or the one destination pod of a named-port entry.
    std::vector<Local> peers;
    if (k.peer_kind == POLICY_PEER_ENDPOINT) {
      if (auto it = by_id.find(static_cast<uint16_t>(k.identity)); it != by_id.end()) peers.push_back(it->second);
    } else {
      auto [first, last] = by_identity.equal_range(k.identity);
      for (auto it = first; it != last; ++it) peers.push_back(it->second);
    }
    for (const Local& peer : peers) {
      uint8_t peer_dir = egress ? METRIC_INGRESS : METRIC_EGRESS;
      auto v = policy::evaluate(resolved_, peer.ep->id, peer_dir, local.ep->identity, k.protocol, ntohs(k.dport));
      if (v.allowed) continue;
      const auto& ep_policy = resolved_.endpoints.at(peer.ep->id);
      const auto& by = egress ? ep_policy.ingress_enforced_by : ep_policy.egress_enforced_by;
      std::string closed_by = v.drop_reason == DROP_POLICY_DENY
                                  ? std::string("a deny rule")
                                  : "its default deny (" + (by.empty() ? std::string("?") : by.front()) + ")";
      notes.insert(fmt::format(
          "{} allows {} to reach {} on {}, but {}'s {} is closed to it by {}: both ends must allow (as in Cilium), "
          "so this traffic is dropped at {} until a rule there allows it",
          who, egress ? *local.name : *peer.name, egress ? *peer.name : *local.name, policy::port_text(k), *peer.name,
          egress ? "ingress" : "egress", closed_by, *peer.name));
    }
  }
  return {notes.begin(), notes.end()};
}

}  // namespace pilus::controller
