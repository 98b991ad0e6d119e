// GET /v1/policies: apiVersion, metadata and spec as the manifest gave them (kubectl -o yaml); the
// rest is pilus's view of the policy (what it selects, its rules as resolved).
#pragma once

#include <optional>

#include "api/v1/meta.h"

namespace pilus::api::v1 {

struct PolicyMeta {
  std::string name;
  std::string ns;                 // "" for a clusterwide policy
  std::optional<Labels> labels;  // as the manifest had them, when it had them
};

void fields(auto& f, Is<PolicyMeta> auto& m) {
  f("name", m.name);
  f("namespace", m.ns, Presence::kOmitEmpty);
  f("labels", m.labels, Presence::kOmitEmpty);
}

struct PolicyRuleView {
  std::string path;  // where in the manifest: "spec.ingress[0]"
  std::string direction;
  bool deny = false;
  std::vector<std::string> peers;  // ["all"] when the rule allows every peer
  std::vector<std::string> ports;
  std::uint64_t http_rules = 0;
};

void fields(auto& f, Is<PolicyRuleView> auto& r) {
  f("path", r.path);
  f("direction", r.direction);
  f("deny", r.deny);
  f("peers", r.peers);
  f("ports", r.ports);
  f("httpRules", r.http_rules);
}

struct Policy {
  std::string kind;
  std::string api_version;
  PolicyMeta metadata;
  std::string ns;  // the namespace its rules apply in
  std::string name;
  std::vector<std::string> selects;  // the subjects' selectors
  std::uint64_t endpoints = 0;       // local pods it selects
  std::vector<PolicyRuleView> rules;
  std::uint64_t l7_rules = 0;
  std::optional<nlohmann::json> spec, specs;  // the manifest's, untouched
};

void fields(auto& f, Is<Policy> auto& p) {
  f("kind", p.kind);
  f("apiVersion", p.api_version);
  f("metadata", p.metadata);
  f("namespace", p.ns);
  f("name", p.name);
  f("selects", p.selects);
  f("endpoints", p.endpoints);
  f("rules", p.rules);
  f("l7Rules", p.l7_rules);
  f("spec", p.spec, Presence::kOmitEmpty);
  f("specs", p.specs, Presence::kOmitEmpty);
}

// A clusterwide policy shows the namespace its rules apply in.
inline std::string namespace_of(const Policy& p) { return p.metadata.ns.empty() ? p.ns : p.metadata.ns; }

using PolicyList = List<Policy>;

}  // namespace pilus::api::v1
