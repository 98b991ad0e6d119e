// Unit tests for NetworkPolicy / CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy parsing and conversion to rules.
#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "identity/labels.h"
#include "manifest/document.h"
#include "manifest/object.h"
#include "policy/policy_conversion.h"
#include "policy/policy_rule.h"
#include "policy/proxy_visibility.h"
#include "example_manifests.h"

namespace pilus::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using manifest::Object;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const pilus::Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::vector<Object> parse_yaml(const std::string& yaml, const std::string& source = "policy.yaml") {
  std::vector<Object> out;
  for (auto& [doc, object] : manifest::parse_all({manifest::Source{source, yaml}})) out.push_back(std::move(object));
  return out;
}

Object parse_one(const std::string& yaml) {
  std::vector<Object> objects = parse_yaml(yaml);
  if (objects.size() != 1) throw std::logic_error("expected exactly one object");
  return objects[0];
}

ConvertedPolicy convert_yaml(const std::string& yaml) { return convert_policy(parse_one(yaml)); }

std::string parse_error(const std::string& yaml) {
  return error_of([&] { parse_yaml(yaml); });
}

// Replaces the single occurrence of `from`, so a test states only what it changes.
std::string with(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  if (at == std::string::npos || text.find(from, at + 1) != std::string::npos) {
    throw std::logic_error("test helper: \"" + from + "\" must occur exactly once");
  }
  return text.replace(at, from.size(), to);
}

std::vector<std::string> peer_strings(const PolicyRule& r) {
  std::vector<std::string> out;
  for (const Peer& p : r.peers) out.push_back(to_string(p));
  return out;
}

std::vector<std::string> port_strings(const PolicyRule& r) {
  std::vector<std::string> out;
  for (const PortRule& p : r.ports) out.push_back(p.to_string());
  return out;
}

identity::LabelSet pod(const std::map<std::string, std::string>& labels, const std::string& ns = "default",
                       const std::map<std::string, std::string>& ns_labels = {}) {
  return identity::pod_labels(labels, ns, ns_labels);
}

const LabelSelector& selector_of(const Peer& p) { return std::get<SelectorPeer>(p).selector; }

// ---------------------------------------------------------------- the seed's policies, verbatim

const std::string kAllowHttp = pilus::testing::example_manifest("policies/allow-http.yaml");

const std::string kAllowApiOnly = pilus::testing::example_manifest("policies/allow-api-only.yaml");

const std::string kDdosProtection = pilus::testing::example_manifest("policies/ddos-protection.yaml");

const std::string kDefaultDenyAndBackendToDb = pilus::testing::example_manifest("policies/zero-trust.yaml");

TEST(PolicySeed, AllowHttpNetworkPolicy) {
  Object o = parse_one(kAllowHttp);
  const auto& np = std::get<manifest::NetworkPolicy>(o);
  EXPECT_EQ(np.name, "allow-http");
  EXPECT_EQ(np.ns, "default");

  ConvertedPolicy c = convert_policy(o);
  ASSERT_EQ(c.rules.size(), 1u);
  const PolicyRule& r = c.rules[0];
  EXPECT_EQ(r.policy_kind, "NetworkPolicy");
  EXPECT_EQ(r.policy_name, "allow-http");
  EXPECT_EQ(r.policy_namespace, "default");
  EXPECT_EQ(r.direction, Direction::kIngress);
  EXPECT_FALSE(r.deny);
  EXPECT_FALSE(r.all_peers);
  EXPECT_EQ(r.subject.to_string(), "k8s:app=backend,k8s:io.kubernetes.pod.namespace=default");
  EXPECT_THAT(peer_strings(r), ElementsAre("endpoints k8s:app=frontend,k8s:io.kubernetes.pod.namespace=default"));
  EXPECT_THAT(port_strings(r), ElementsAre("80/TCP"));
  EXPECT_TRUE(r.http.empty());
  EXPECT_EQ(r.rule_index, 0);
  EXPECT_EQ(r.source_path, "spec.ingress[0]");

  // Only ingress becomes default-deny: no egress section, no policyTypes.
  ASSERT_EQ(c.default_deny.size(), 1u);
  EXPECT_EQ(c.default_deny[0].direction, Direction::kIngress);
  EXPECT_EQ(c.default_deny[0].subject, r.subject);
  EXPECT_TRUE(c.notes.empty());

  EXPECT_TRUE(r.subject.matches(pod({{"app", "backend"}})));
  EXPECT_FALSE(r.subject.matches(pod({{"app", "backend"}}, "prod")));
  EXPECT_TRUE(selector_of(r.peers[0]).matches(pod({{"app", "frontend"}})));
  EXPECT_FALSE(selector_of(r.peers[0]).matches(pod({{"app", "frontend"}}, "prod")));
}

TEST(PolicySeed, AllowApiOnlyCiliumNetworkPolicy) {
  ConvertedPolicy c = convert_yaml(kAllowApiOnly);
  ASSERT_EQ(c.rules.size(), 1u);
  const PolicyRule& r = c.rules[0];
  EXPECT_EQ(r.policy_kind, "CiliumNetworkPolicy");
  EXPECT_EQ(r.policy_name, "allow-api-only");
  EXPECT_EQ(r.policy_namespace, "default");
  EXPECT_EQ(r.direction, Direction::kIngress);
  EXPECT_EQ(r.subject.to_string(), "any:app=backend,k8s:io.kubernetes.pod.namespace=default");
  EXPECT_THAT(peer_strings(r), ElementsAre("endpoints any:app=frontend,k8s:io.kubernetes.pod.namespace=default"));
  EXPECT_THAT(port_strings(r), ElementsAre("80/TCP"));
  ASSERT_EQ(r.http.size(), 1u);
  EXPECT_EQ(r.http[0], (HttpRule{"GET", "/api/.*", "", {}}));
  EXPECT_EQ(r.source_path, "spec.ingress[0].toPorts[0]");
  ASSERT_EQ(c.default_deny.size(), 1u);
  EXPECT_EQ(c.default_deny[0].direction, Direction::kIngress);
  EXPECT_EQ(c.default_deny[0].reason, "spec.ingress is present");
  EXPECT_TRUE(c.notes.empty());
  EXPECT_TRUE(selector_of(r.peers[0]).matches(pod({{"app", "frontend"}})));
}

TEST(PolicySeed, DdosProtectionClusterwide) {
  Object o = parse_one(kDdosProtection);
  ASSERT_TRUE(std::holds_alternative<manifest::CiliumClusterwideNetworkPolicy>(o));
  ConvertedPolicy c = convert_policy(o);
  ASSERT_EQ(c.rules.size(), 1u);
  const PolicyRule& r = c.rules[0];
  EXPECT_EQ(r.policy_kind, "CiliumClusterwideNetworkPolicy");
  EXPECT_EQ(r.policy_namespace, "");
  EXPECT_TRUE(r.subject.empty());  // every endpoint, every namespace
  EXPECT_THAT(peer_strings(r), ElementsAre("cidr 10.0.0.0/8"));
  EXPECT_THAT(port_strings(r), ElementsAre("80/TCP"));
  EXPECT_EQ(r.http, (std::vector<HttpRule>{HttpRule{"GET", "", "", {}}}));
  const auto& cidr = std::get<CidrPeer>(r.peers[0]);
  EXPECT_TRUE(cidr.contains(endpoint::parse_ipv4("10.1.2.3")));
  EXPECT_FALSE(cidr.contains(endpoint::parse_ipv4("192.168.1.1")));
  ASSERT_EQ(c.default_deny.size(), 1u);
  EXPECT_EQ(c.default_deny[0].direction, Direction::kIngress);
  EXPECT_TRUE(c.notes.empty());
}

TEST(PolicySeed, DefaultDenyAndAllowBackendToDb) {
  std::vector<Object> objects = parse_yaml(kDefaultDenyAndBackendToDb);
  ASSERT_EQ(objects.size(), 2u);

  // Empty lists: no rules, but both directions default-deny for every pod of the namespace.
  ConvertedPolicy deny = convert_policy(objects[0]);
  EXPECT_TRUE(deny.rules.empty());
  ASSERT_EQ(deny.default_deny.size(), 2u);
  EXPECT_EQ(deny.default_deny[0].direction, Direction::kIngress);
  EXPECT_EQ(deny.default_deny[1].direction, Direction::kEgress);
  EXPECT_EQ(deny.default_deny[0].policy_name, "default-deny");
  EXPECT_EQ(deny.default_deny[0].subject.to_string(), "k8s:io.kubernetes.pod.namespace=default");
  EXPECT_TRUE(deny.default_deny[0].subject.matches(pod({{"app", "anything"}})));
  EXPECT_FALSE(deny.default_deny[0].subject.matches(pod({{"app", "anything"}}, "prod")));
  // ...and apply says upstream Cilium would not enforce it.
  ASSERT_EQ(deny.notes.size(), 2u);
  EXPECT_THAT(deny.notes[0], HasSubstr("CiliumNetworkPolicy default/default-deny: spec.ingress is empty"));
  EXPECT_THAT(deny.notes[0], HasSubstr("upstream Cilium ignores an empty section"));
  EXPECT_THAT(deny.notes[0], HasSubstr("ingress: [{}]"));
  EXPECT_THAT(deny.notes[1], HasSubstr("spec.egress is empty"));

  ConvertedPolicy db = convert_policy(objects[1]);
  ASSERT_EQ(db.rules.size(), 1u);
  const PolicyRule& r = db.rules[0];
  EXPECT_EQ(r.policy_name, "allow-backend-to-db");
  EXPECT_EQ(r.direction, Direction::kEgress);
  EXPECT_EQ(r.subject.to_string(), "any:app=backend,k8s:io.kubernetes.pod.namespace=default");
  EXPECT_THAT(peer_strings(r), ElementsAre("endpoints any:app=postgres,k8s:io.kubernetes.pod.namespace=default"));
  EXPECT_THAT(port_strings(r), ElementsAre("5432/TCP"));
  EXPECT_TRUE(r.http.empty());
  ASSERT_EQ(db.default_deny.size(), 1u);
  EXPECT_EQ(db.default_deny[0].direction, Direction::kEgress);
  EXPECT_TRUE(db.notes.empty());
}

TEST(PolicySeed, AllSeedPoliciesInOneApply) {
  auto all = manifest::parse_all({manifest::Source{"seed.yaml", kAllowHttp + "---\n" + kAllowApiOnly + "---\n" +
                                                                    kDdosProtection + "---\n" + kDefaultDenyAndBackendToDb}});
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[2].first.describe(), "seed.yaml document 3 (CiliumClusterwideNetworkPolicy ddos-protection)");
  EXPECT_EQ(all[3].first.describe(), "seed.yaml document 4 (CiliumNetworkPolicy default/default-deny)");
  size_t rules = 0;
  for (const auto& [doc, object] : all) {
    EXPECT_TRUE(is_policy(object));
    rules += to_rules(object).size();
  }
  EXPECT_EQ(rules, 4u);
}

// ---------------------------------------------------------------- NetworkPolicy

const std::string kNp = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: api
)";

TEST(NetworkPolicy, NonPolicyObjectsHaveNoRules) {
  Object o = parse_one("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n");
  EXPECT_FALSE(is_policy(o));
  ConvertedPolicy c = convert_policy(o);
  EXPECT_TRUE(c.rules.empty() && c.default_deny.empty() && c.notes.empty());
}

TEST(NetworkPolicy, EmptyRuleAllowsEverything) {
  ConvertedPolicy c = convert_yaml(kNp + "  ingress:\n  - {}\n");
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_TRUE(c.rules[0].all_peers);
  EXPECT_TRUE(c.rules[0].peers.empty());
  EXPECT_TRUE(c.rules[0].ports.empty());
  EXPECT_EQ(c.rules[0].subject.to_string(), "k8s:app=api,k8s:io.kubernetes.pod.namespace=shop");
  // `from: []` is the same as no from.
  EXPECT_TRUE(convert_yaml(kNp + "  ingress:\n  - from: []\n").rules[0].all_peers);
}

TEST(NetworkPolicy, PolicyTypesDefaults) {
  // No sections: ingress only, and nothing allowed.
  ConvertedPolicy c = convert_yaml(kNp);
  EXPECT_TRUE(c.rules.empty());
  ASSERT_EQ(c.default_deny.size(), 1u);
  EXPECT_EQ(c.default_deny[0].direction, Direction::kIngress);

  // Egress rules add Egress.
  c = convert_yaml(kNp + "  egress:\n  - ports:\n    - port: 53\n      protocol: UDP\n");
  ASSERT_EQ(c.default_deny.size(), 2u);
  EXPECT_EQ(c.default_deny[1].direction, Direction::kEgress);
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_TRUE(c.rules[0].all_peers);
  EXPECT_THAT(port_strings(c.rules[0]), ElementsAre("53/UDP"));

  // `egress: []` without policyTypes adds nothing in Kubernetes: say so.
  c = convert_yaml(kNp + "  egress: []\n");
  ASSERT_EQ(c.default_deny.size(), 1u);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_THAT(c.notes[0], HasSubstr("NetworkPolicy shop/np: spec.egress: [] has no effect without policyTypes"));

  // Explicit types: egress-only deny, ingress section ignored with a note.
  c = convert_yaml(kNp + "  policyTypes: [Egress]\n  ingress:\n  - {}\n");
  ASSERT_EQ(c.default_deny.size(), 1u);
  EXPECT_EQ(c.default_deny[0].direction, Direction::kEgress);
  EXPECT_EQ(c.default_deny[0].reason, "policyTypes lists Egress");
  EXPECT_TRUE(c.rules.empty());
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_THAT(c.notes[0], HasSubstr("spec.ingress is ignored because policyTypes does not list Ingress"));

  c = convert_yaml(kNp + "  policyTypes: [Ingress, Egress]\n");
  EXPECT_EQ(c.default_deny.size(), 2u);
  EXPECT_TRUE(c.notes.empty());
}

TEST(NetworkPolicy, PodSelectorAbsentSelectsTheWholeNamespace) {
  ConvertedPolicy c = convert_yaml(with(kNp, "  podSelector:\n    matchLabels:\n      app: api\n", "  ingress: []\n"));
  ASSERT_EQ(c.default_deny.size(), 1u);
  EXPECT_EQ(c.default_deny[0].subject.to_string(), "k8s:io.kubernetes.pod.namespace=shop");
}

TEST(NetworkPolicy, NamespaceSelectorPeers) {
  ConvertedPolicy c = convert_yaml(kNp + R"(  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          team: blue
    - namespaceSelector: {}
    - namespaceSelector:
        matchExpressions:
        - {key: env, operator: In, values: [prod, staging]}
      podSelector:
        matchLabels:
          role: client
)");
  ASSERT_EQ(c.rules.size(), 1u);
  const PolicyRule& r = c.rules[0];
  EXPECT_THAT(peer_strings(r),
              ElementsAre("endpoints k8s:io.cilium.k8s.namespace.labels.team=blue",
                          "endpoints k8s:io.kubernetes.pod.namespace",
                          "endpoints k8s:role=client,k8s:io.cilium.k8s.namespace.labels.env in (prod,staging)"));
  auto blue = pod({{"app", "x"}}, "other", {{"team", "blue"}});
  EXPECT_TRUE(selector_of(r.peers[0]).matches(blue));
  EXPECT_FALSE(selector_of(r.peers[0]).matches(pod({{"app", "x"}}, "other")));
  EXPECT_TRUE(selector_of(r.peers[1]).matches(pod({}, "anywhere")));
  EXPECT_FALSE(selector_of(r.peers[1]).matches(identity::parse_label_set("reserved:host")));
  // Both selectors: AND.
  EXPECT_TRUE(selector_of(r.peers[2]).matches(pod({{"role", "client"}}, "p", {{"env", "prod"}})));
  EXPECT_FALSE(selector_of(r.peers[2]).matches(pod({{"role", "client"}}, "p", {{"env", "dev"}})));
  EXPECT_FALSE(selector_of(r.peers[2]).matches(pod({{"role", "server"}}, "p", {{"env", "prod"}})));
  // The built-in namespace name label works without a Namespace manifest.
  ConvertedPolicy by_name = convert_yaml(kNp + R"(  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: monitoring
)");
  EXPECT_TRUE(selector_of(by_name.rules[0].peers[0]).matches(pod({}, "monitoring")));
}

TEST(NetworkPolicy, IpBlockAndPorts) {
  ConvertedPolicy c = convert_yaml(kNp + R"(  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/8
        except: [10.1.0.0/16, 10.2.3.4/32]
    ports:
    - port: 8000
      endPort: 8080
    - port: http
      protocol: TCP
    - protocol: UDP
    - port: 443
      endPort: 443
)");
  ASSERT_EQ(c.rules.size(), 1u);
  const PolicyRule& r = c.rules[0];
  EXPECT_EQ(r.direction, Direction::kEgress);
  EXPECT_THAT(peer_strings(r), ElementsAre("cidr 10.0.0.0/8 except 10.1.0.0/16 except 10.2.3.4/32"));
  const auto& cidr = std::get<CidrPeer>(r.peers[0]);
  EXPECT_TRUE(cidr.contains(endpoint::parse_ipv4("10.2.3.5")));
  EXPECT_FALSE(cidr.contains(endpoint::parse_ipv4("10.2.3.4")));
  EXPECT_FALSE(cidr.contains(endpoint::parse_ipv4("10.1.9.9")));
  EXPECT_THAT(port_strings(r), ElementsAre("8000-8080/TCP", "http/TCP", "all/UDP", "443/TCP"));
  EXPECT_EQ(r.ports[1].port_name, "http");
  EXPECT_TRUE(r.ports[2].all_ports());
  EXPECT_EQ(r.ports[3].end_port, 0);
}

TEST(NetworkPolicy, Errors) {
  const std::string where = "policy.yaml document 1 (NetworkPolicy shop/np): ";
  auto ingress = [&](const std::string& rule) { return parse_error(kNp + "  ingress:\n  - " + rule + "\n"); };
  EXPECT_EQ(parse_error(kNp + "  ingres: []\n"), where + "unknown field \"spec.ingres\" (did you mean \"ingress\"?)");
  EXPECT_EQ(ingress("from: [{}]"), where + "spec.ingress[0].from[0]: must set podSelector, namespaceSelector or ipBlock");
  EXPECT_EQ(ingress("from: [{podselector: {}}]"),
            where + "unknown field \"spec.ingress[0].from[0].podselector\" (did you mean \"podSelector\"?)");
  EXPECT_EQ(ingress("from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]"),
            where + "spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or namespaceSelector in one "
                    "peer (write separate peers)");
  EXPECT_EQ(ingress("from: [{ipBlock: {cidr: 10.0.0.0/33}}]"),
            where + "spec.ingress[0].from[0].ipBlock.cidr: invalid IPv4 prefix \"10.0.0.0/33\": the length must be a "
                    "number 0..32");
  EXPECT_EQ(ingress("from: [{ipBlock: {cidr: 10.0.0.1}}]"),
            where + "spec.ingress[0].from[0].ipBlock.cidr: invalid IPv4 prefix \"10.0.0.1\": expected address/length");
  EXPECT_EQ(ingress("from: [{ipBlock: {cidr: 10.0.0.5/24}}]"),
            where + "spec.ingress[0].from[0].ipBlock.cidr: \"10.0.0.5/24\" has host bits set: write \"10.0.0.0/24\" "
                    "for the network or \"10.0.0.5/32\" for one address");
  EXPECT_EQ(ingress("from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]"),
            where + "spec.ingress[0].from[0].ipBlock.except[0]: 192.168.0.0/16 is not strictly inside cidr 10.0.0.0/8");
  EXPECT_EQ(ingress("from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]"),
            where + "spec.ingress[0].from[0].ipBlock.except[0]: 10.0.0.0/8 is not strictly inside cidr 10.0.0.0/8");
  EXPECT_THAT(ingress("from: [{ipBlock: {cidr: \"fd00::/8\"}}]"), HasSubstr("IPv6 CIDR \"fd00::/8\" is not supported"));
  EXPECT_EQ(ingress("ports: [{port: 0}]"),
            where + "spec.ingress[0].ports[0].port: must be an integer between 1 and 65535, got 0");
  EXPECT_EQ(ingress("ports: [{port: 65536}]"),
            where + "spec.ingress[0].ports[0].port: must be an integer between 1 and 65535, got 65536");
  EXPECT_EQ(ingress("ports: [{port: \"80\"}]"),
            where + "spec.ingress[0].ports[0].port: must be a port number or a port name, got \"80\" (write 80 "
                    "without quotes)");
  EXPECT_THAT(ingress("ports: [{port: Http_1}]"), HasSubstr("spec.ingress[0].ports[0].port: invalid port name"));
  EXPECT_EQ(ingress("ports: [{port: 90, endPort: 80}]"),
            where + "spec.ingress[0].ports[0].endPort: must be at least port 90, got 80");
  EXPECT_EQ(ingress("ports: [{endPort: 80}]"),
            where + "spec.ingress[0].ports[0].endPort: needs \"port\" to be set (the first port of the range)");
  EXPECT_EQ(ingress("ports: [{port: http, endPort: 80}]"),
            where + "spec.ingress[0].ports[0].endPort: cannot be used with a named port (\"http\")");
  EXPECT_EQ(ingress("ports: [{port: 80, protocol: tcp}]"),
            where + "spec.ingress[0].ports[0].protocol: must be one of TCP, UDP, SCTP, got \"tcp\"");
  EXPECT_EQ(parse_error(kNp + "  policyTypes: [Ingress, Ingress]\n"),
            where + "spec.policyTypes[1]: Ingress is listed twice");
  EXPECT_EQ(parse_error(kNp + "  policyTypes: [Both]\n"),
            where + "spec.policyTypes[0]: must be one of Ingress, Egress, got \"Both\"");
  // A subject can only be in the policy's namespace.
  EXPECT_THAT(parse_error(with(kNp, "app: api", "io.kubernetes.pod.namespace: other")),
              HasSubstr("spec.podSelector: selects namespace \"other\", but this policy is in namespace \"shop\""));
  EXPECT_EQ(parse_error(with(kNp, "networking.k8s.io/v1", "networking.k8s.io/v1beta1")),
            "policy.yaml document 1 (NetworkPolicy shop/np): apiVersion: \"networking.k8s.io/v1beta1\" is not "
            "supported for kind NetworkPolicy (use \"networking.k8s.io/v1\")");
  // Cilium's key syntax is not Kubernetes'.
  EXPECT_THAT(parse_error(with(kNp, "app: api", "k8s:app: api")), HasSubstr("invalid label key \"k8s:app\""));
}

TEST(NetworkPolicy, SelectorErrors) {
  const std::string where = "policy.yaml document 1 (NetworkPolicy shop/np): ";
  auto selector = [&](const std::string& expression) {
    return parse_error(with(kNp, "    matchLabels:\n      app: api\n", "    matchExpressions:\n    - " + expression + "\n"));
  };
  EXPECT_EQ(selector("{key: app, operator: Like, values: [a]}"),
            where + "spec.podSelector.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist, "
                    "got \"Like\"");
  EXPECT_EQ(selector("{key: app, operator: In}"),
            where + "spec.podSelector.matchExpressions[0]: operator In needs a non-empty \"values\" list");
  EXPECT_EQ(selector("{key: app, operator: NotIn, values: []}"),
            where + "spec.podSelector.matchExpressions[0].values: must not be empty for operator NotIn");
  EXPECT_EQ(selector("{key: app, operator: Exists, values: [a]}"),
            where + "spec.podSelector.matchExpressions[0].values: must be absent for operator Exists (it tests only "
                    "the key)");
  EXPECT_EQ(selector("{operator: Exists}"),
            where + "missing required field \"spec.podSelector.matchExpressions[0].key\"");
  EXPECT_EQ(selector("{key: app, operator: DoesNotExist, value: [a]}"),
            where + "unknown field \"spec.podSelector.matchExpressions[0].value\" (did you mean \"values\"?)");
  EXPECT_THAT(selector("{key: app, operator: In, values: [\"a b\"]}"), HasSubstr("invalid label value \"a b\""));
  // Values are a set: sorted, duplicates dropped; Exists with an empty list is fine.
  Object o = parse_one(with(kNp, "    matchLabels:\n      app: api\n",
                            "    matchExpressions:\n    - {key: app, operator: In, values: [b, a, b]}\n"
                            "    - {key: x, operator: Exists, values: []}\n"));
  const auto& np = std::get<manifest::NetworkPolicy>(o);
  ASSERT_EQ(np.pod_selector.match_expressions.size(), 2u);
  EXPECT_EQ(np.pod_selector.match_expressions[0].values, (std::vector<std::string>{"a", "b"}));
}

// ---------------------------------------------------------------- Cilium policies

const std::string kCnp = R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: cnp
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: api
)";

const std::string kCcnp = R"(apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: ccnp
spec:
  endpointSelector:
    matchLabels:
      app: api
)";

TEST(CiliumPolicy, EndpointScoping) {
  ConvertedPolicy c = convert_yaml(kCnp + R"(  ingress:
  - fromEndpoints:
    - {}
    - matchLabels: {"k8s:io.kubernetes.pod.namespace": other, role: x}
    - matchLabels: {"io.cilium.k8s.namespace.labels.team": blue}
    - matchLabels: {"reserved:host": ""}
    - matchExpressions: [{key: "any:io.kubernetes.pod.namespace", operator: In, values: [a, b]}]
)");
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_THAT(peer_strings(c.rules[0]),
              ElementsAre("endpoints k8s:io.kubernetes.pod.namespace=shop",
                          "endpoints k8s:io.kubernetes.pod.namespace=other,any:role=x",
                          "endpoints any:io.cilium.k8s.namespace.labels.team=blue", "endpoints reserved:host",
                          "endpoints any:io.kubernetes.pod.namespace in (a,b)"));
  EXPECT_TRUE(selector_of(c.rules[0].peers[3]).matches(identity::parse_label_set("reserved:host")));
  EXPECT_TRUE(selector_of(c.rules[0].peers[1]).matches(pod({{"role", "x"}}, "other")));

  // Clusterwide: not limited to a namespace, but to pods (which all have a namespace label).
  c = convert_yaml(kCcnp + "  egress:\n  - toEndpoints:\n    - {}\n    - matchLabels: {app: db}\n");
  EXPECT_EQ(c.rules[0].subject.to_string(), "any:app=api");
  EXPECT_THAT(peer_strings(c.rules[0]), ElementsAre("endpoints k8s:io.kubernetes.pod.namespace",
                                                    "endpoints any:app=db,k8s:io.kubernetes.pod.namespace"));
  EXPECT_TRUE(selector_of(c.rules[0].peers[1]).matches(pod({{"app", "db"}}, "anywhere")));
  EXPECT_FALSE(selector_of(c.rules[0].peers[0]).matches(identity::parse_label_set("reserved:world")));
  EXPECT_EQ(c.rules[0].policy_namespace, "");
}

TEST(CiliumPolicy, PeerKindsAndPorts) {
  ConvertedPolicy c = convert_yaml(kCnp + R"(  egress:
  - toEntities: [world, host, cluster, all, remote-node, kube-apiserver, health, init, unmanaged, ingress]
  - toCIDR: [192.168.1.1, 10.0.0.0/8]
    toCIDRSet:
    - cidr: 172.16.0.0/12
      except: [172.16.1.0/24]
  - toPorts:
    - ports:
      - port: "53"
        protocol: UDP
      - port: "DNS-TCP"
    - ports:
      - port: "8000"
        endPort: 9000
        protocol: TCP
      rules:
        http:
        - {}
        - method: POST
          path: /v1/.*
          host: api.example.com
          headers: ["X-Token: secret", X-Trace]
)");
  ASSERT_EQ(c.rules.size(), 4u);
  EXPECT_THAT(peer_strings(c.rules[0]),
              ElementsAre("entity world", "entity host", "entity cluster", "entity all", "entity remote-node",
                          "entity kube-apiserver", "entity health", "entity init", "entity unmanaged", "entity ingress"));
  EXPECT_TRUE(c.rules[0].ports.empty());
  EXPECT_THAT(peer_strings(c.rules[1]),
              ElementsAre("cidr 192.168.1.1/32", "cidr 10.0.0.0/8", "cidr 172.16.0.0/12 except 172.16.1.0/24"));
  // Only toPorts: every peer at L4, one rule per toPorts entry.
  EXPECT_TRUE(c.rules[2].all_peers);
  EXPECT_TRUE(c.rules[2].peers.empty());
  EXPECT_THAT(port_strings(c.rules[2]), ElementsAre("53/UDP", "dns-tcp/ANY"));
  EXPECT_TRUE(c.rules[2].http.empty());
  EXPECT_EQ(c.rules[2].source_path, "spec.egress[2].toPorts[0]");
  EXPECT_EQ(c.rules[2].rule_index, 2);
  EXPECT_THAT(port_strings(c.rules[3]), ElementsAre("8000-9000/TCP"));
  ASSERT_EQ(c.rules[3].http.size(), 2u);
  EXPECT_EQ(c.rules[3].http[0], HttpRule{});
  EXPECT_EQ(c.rules[3].http[1],
            (HttpRule{"POST", "/v1/.*", "api.example.com", {"X-Token: secret", "X-Trace"}}));
  EXPECT_EQ(c.rules[3].source_path, "spec.egress[2].toPorts[1]");
  EXPECT_TRUE(c.notes.empty());
}

TEST(CiliumPolicy, EmptyRuleAllowsNothingUnlikeNetworkPolicy) {
  ConvertedPolicy c = convert_yaml(kCnp + "  ingress:\n  - {}\n");
  EXPECT_TRUE(c.rules.empty());
  ASSERT_EQ(c.default_deny.size(), 1u);
  // Upstream enforces `[{}]` too, so no default-deny note; only the "allows nothing" one.
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_THAT(c.notes[0], HasSubstr("CiliumNetworkPolicy shop/cnp: spec.ingress[0] has no peers and no toPorts, so it "
                                    "allows nothing"));
}

TEST(CiliumPolicy, EmptyPeerListsCountAsAbsent) {
  ConvertedPolicy c = convert_yaml(kCnp + "  ingress:\n  - fromEndpoints: []\n    toPorts:\n    - ports: [{port: \"80\"}]\n");
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_TRUE(c.rules[0].all_peers);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_THAT(c.notes[0], HasSubstr("spec.ingress[0]: fromEndpoints: [] selects no peer and counts as absent"));
}

TEST(CiliumPolicy, DenySectionsAndDefaultDeny) {
  ConvertedPolicy c = convert_yaml(kCnp + R"(  ingressDeny:
  - fromEntities: [world]
    toPorts:
    - ports: [{port: "22", protocol: TCP}]
  egressDeny:
  - toCIDR: [10.9.0.0/16]
)");
  ASSERT_EQ(c.rules.size(), 2u);
  EXPECT_TRUE(c.rules[0].deny);
  EXPECT_EQ(c.rules[0].direction, Direction::kIngress);
  EXPECT_EQ(c.rules[0].source_path, "spec.ingressDeny[0].toPorts[0]");
  EXPECT_TRUE(c.rules[1].deny);
  EXPECT_EQ(c.rules[1].direction, Direction::kEgress);
  // Deny sections turn default deny on too, as in Cilium.
  ASSERT_EQ(c.default_deny.size(), 2u);
  EXPECT_EQ(c.default_deny[0].reason, "spec.ingressDeny is present");

  // enableDefaultDeny overrides either way.
  c = convert_yaml(kCnp + "  enableDefaultDeny: {ingress: false, egress: true}\n  ingress:\n  - fromEntities: [host]\n");
  ASSERT_EQ(c.default_deny.size(), 1u);
  EXPECT_EQ(c.default_deny[0].direction, Direction::kEgress);
  EXPECT_EQ(c.default_deny[0].reason, "spec.enableDefaultDeny.egress is true");
  EXPECT_EQ(c.rules.size(), 1u);
  EXPECT_TRUE(c.notes.empty());

  // An empty section beside a non-empty one of the same direction: upstream enforces, no note.
  c = convert_yaml(kCnp + "  ingress: []\n  ingressDeny:\n  - fromEntities: [world]\n");
  EXPECT_EQ(c.default_deny.size(), 1u);
  EXPECT_TRUE(c.notes.empty());
}

// `egress:` with no value (Cilium's deny-all examples), `egress: []` and `egress: [{}]` all put
// the selected endpoints in default deny for that direction; the first two with a note that
// upstream Cilium would not enforce them.
TEST(CiliumPolicy, PresentButEmptySectionsAreDefaultDeny) {
  for (const std::string section : {"egress:\n", "egress: []\n", "egress:\n  - {}\n", "ingress:\n", "ingressDeny:\n"}) {
    ConvertedPolicy c = convert_yaml(kCnp + "  " + section);
    EXPECT_TRUE(c.rules.empty()) << section;
    ASSERT_EQ(c.default_deny.size(), 1u) << section;
    EXPECT_EQ(c.default_deny[0].direction, section.find("egress") != std::string::npos ? Direction::kEgress
                                                                                      : Direction::kIngress);
    ASSERT_EQ(c.notes.size(), 1u) << section;
    if (section.find("{}") == std::string::npos) {
      EXPECT_THAT(c.notes[0], HasSubstr("upstream Cilium ignores an empty section")) << section;
    }
  }
  // In a NetworkPolicy an empty `ingress:` is absent (Kubernetes decodes null so), and
  // `ingress: [{}]` allows everything.
  ConvertedPolicy np = convert_yaml(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {}
  policyTypes: [Egress]
  ingress:
  egress:
  - {}
)");
  ASSERT_EQ(np.rules.size(), 1u);
  EXPECT_TRUE(np.rules[0].all_peers);
  ASSERT_EQ(np.default_deny.size(), 1u);
  EXPECT_EQ(np.default_deny[0].direction, Direction::kEgress);
}

TEST(Policy, SctpIsAcceptedWithAWarning) {
  ConvertedPolicy c = convert_yaml(kCnp + "  ingress:\n  - toPorts:\n    - ports: [{port: \"80\", protocol: SCTP}]\n");
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_EQ(c.rules[0].ports[0].protocol, Protocol::kSctp);
  EXPECT_THAT(c.warnings, ElementsAre("CiliumNetworkPolicy shop/cnp: spec.ingress[0].toPorts[0].ports[0]: SCTP traffic "
                                      "is not supported by pilus: this port allows nothing (never TCP or UDP)"));
  c = convert_yaml(R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {}
  egress:
  - ports: [{port: 5000, protocol: SCTP}, {port: 53, protocol: UDP}]
)");
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_THAT(c.warnings[0], HasSubstr("NetworkPolicy default/np: spec.egress[0].ports[0]: SCTP"));
}

TEST(CiliumPolicy, ReservedInitIsAcceptedWithAWarning) {
  ConvertedPolicy c = convert_yaml(R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: init, namespace: shop}
specs:
- endpointSelector:
    matchLabels:
      "reserved:init": ""
  ingress:
  - fromEntities: [host]
)");
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_EQ(c.rules[0].subject.to_string(), "reserved:init,k8s:io.kubernetes.pod.namespace=shop");
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_THAT(c.warnings[0], HasSubstr("selects reserved:init"));
  EXPECT_THAT(c.warnings[0], HasSubstr("selects no endpoint"));
}

TEST(Policy, ProxyVisibilityAnnotation) {
  EXPECT_EQ(parse_proxy_visibility("<Ingress/80/TCP/HTTP>, <Egress/8080/TCP/HTTP>"),
            (std::vector<VisibilityPort>{{Direction::kIngress, 80}, {Direction::kEgress, 8080}}));
  EXPECT_THAT(error_of([] { parse_proxy_visibility("<Egress/53/UDP/DNS>"); }), HasSubstr("HTTP over TCP only"));
  EXPECT_THAT(error_of([] { parse_proxy_visibility("Ingress/80/TCP/HTTP"); }), HasSubstr("<Direction/Port/Protocol/L7Protocol>"));
  EXPECT_THAT(error_of([] { parse_proxy_visibility("<Ingress/http/TCP/HTTP>"); }), HasSubstr("port must be a number"));
  EXPECT_THAT(error_of([] { parse_proxy_visibility("<Inbound/80/TCP/HTTP>"); }), HasSubstr("Ingress or Egress"));
}

TEST(CiliumPolicy, SpecsList) {
  ConvertedPolicy c = convert_yaml(R"(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: multi
spec:
  endpointSelector: {matchLabels: {app: a}}
  ingress: [{fromEntities: [host]}]
specs:
- endpointSelector: {matchLabels: {app: b}}
  description: second
  egress: [{toEntities: [world]}]
- endpointSelector: {}
  ingress: []
)");
  ASSERT_EQ(c.rules.size(), 2u);
  EXPECT_EQ(c.rules[0].subject.to_string(), "any:app=a,k8s:io.kubernetes.pod.namespace=default");
  EXPECT_EQ(c.rules[1].subject.to_string(), "any:app=b,k8s:io.kubernetes.pod.namespace=default");
  EXPECT_EQ(c.rules[1].source_path, "specs[0].egress[0]");
  ASSERT_EQ(c.default_deny.size(), 3u);
  EXPECT_EQ(c.default_deny[2].reason, "specs[1].ingress is present");
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_THAT(c.notes[0], HasSubstr("specs[1].ingress is empty"));

  Object o = parse_one(with(kCnp, "spec:\n  endpointSelector:\n    matchLabels:\n      app: api\n",
                            "specs:\n- endpointSelector: {}\n"));
  EXPECT_EQ(std::get<manifest::CiliumNetworkPolicy>(o).rules.size(), 1u);
}

TEST(CiliumPolicy, Errors) {
  const std::string where = "policy.yaml document 1 (CiliumNetworkPolicy shop/cnp): ";
  auto ingress = [&](const std::string& rule) { return parse_error(kCnp + "  ingress:\n  - " + rule + "\n"); };
  auto port = [&](const std::string& p) { return ingress("toPorts: [{ports: [" + p + "]}]"); };
  EXPECT_EQ(parse_error(with(kCnp, "  endpointSelector:", "  nodeSelector: {}\n  endpointSelector:")),
            where + "spec.nodeSelector: nodeSelector is not supported by pilus (pilus has no host policies; select "
                    "pods with endpointSelector)");
  EXPECT_EQ(parse_error(with(kCnp, "spec:\n  endpointSelector:\n    matchLabels:\n      app: api\n", "")),
            where + "missing required field \"spec\" (or \"specs\", a list of rules)");
  EXPECT_EQ(parse_error(with(kCnp, "endpointSelector", "endpointselector")),
            where + "missing required field \"spec.endpointSelector\" (is \"endpointselector\" a typo?)");
  EXPECT_EQ(ingress("fromEndpoint: [{}]"),
            where + "unknown field \"spec.ingress[0].fromEndpoint\" (did you mean \"fromEndpoints\"?)");
  EXPECT_EQ(ingress("fromEntities: [everyone]"),
            where + "spec.ingress[0].fromEntities[0]: unknown entity \"everyone\" (supported: world, host, remote-node, "
                    "cluster, all, kube-apiserver, health, init, unmanaged, ingress)");
  EXPECT_EQ(ingress("fromCIDR: [10.0.0.0/8]\n    fromEntities: [world]"),
            where + "spec.ingress[0]: combining fromCIDR/fromCIDRSet and fromEntities in one rule is not supported "
                    "(write them as separate rules)");
  EXPECT_EQ(ingress("fromCIDR: [10.0.0.300/8]"),
            where + "spec.ingress[0].fromCIDR[0]: invalid IPv4 prefix \"10.0.0.300/8\": invalid IPv4 address "
                    "\"10.0.0.300\": each part must be a number 0..255 without leading zeros");
  EXPECT_EQ(ingress("fromCIDRSet: [{cidr: 10.0.0.0/16, except: [10.1.0.0/24]}]"),
            where + "spec.ingress[0].fromCIDRSet[0].except[0]: 10.1.0.0/24 is not strictly inside cidr 10.0.0.0/16");
  EXPECT_EQ(ingress("fromCIDRSet: [{cidrGroupRef: office}]"),
            where + "spec.ingress[0].fromCIDRSet[0].cidrGroupRef: cidrGroupRef is not supported by pilus (write the "
                    "cidr)");
  EXPECT_EQ(ingress("fromRequires: [{}]"),
            where + "spec.ingress[0].fromRequires: fromRequires is not supported by pilus");
  EXPECT_EQ(parse_error(kCnp + "  egress:\n  - toFQDNs: [{matchName: example.com}]\n"),
            where + "spec.egress[0].toFQDNs: toFQDNs is not supported by pilus");
  EXPECT_EQ(port("{port: 80}"),
            where + "spec.ingress[0].toPorts[0].ports[0].port: must be a string, got 80 (put it in quotes)");
  EXPECT_EQ(port("{port: \"0\"}"), where + "spec.ingress[0].toPorts[0].ports[0].port: must be a port number between 1 "
                                           "and 65535 or a port name, got \"0\"");
  EXPECT_EQ(port("{port: \"70000\"}"), where + "spec.ingress[0].toPorts[0].ports[0].port: must be a port number "
                                               "between 1 and 65535 or a port name, got \"70000\"");
  EXPECT_EQ(port("{port: \"080\"}"),
            where + "spec.ingress[0].toPorts[0].ports[0].port: must not have leading zeros, got \"080\"");
  EXPECT_THAT(port("{port: \"http_x\"}"), HasSubstr("invalid port name \"http_x\""));
  EXPECT_EQ(port("{protocol: TCP}"), where + "missing required field \"spec.ingress[0].toPorts[0].ports[0].port\"");
  EXPECT_EQ(port("{port: \"90\", endPort: 80}"),
            where + "spec.ingress[0].toPorts[0].ports[0].endPort: must be at least port 90, got 80");
  EXPECT_EQ(port("{port: \"80\", protocol: ICMP}"),
            where + "spec.ingress[0].toPorts[0].ports[0].protocol: must be one of TCP, UDP, ANY, SCTP, got \"ICMP\"");
  EXPECT_EQ(ingress("toPorts: [{ports: []}]"), where + "spec.ingress[0].toPorts[0].ports: must list at least one port");
  EXPECT_EQ(ingress("toPorts: [{ports: [{port: \"80\"}], rules: {http: [{method: GET}]}}]"),
            where + "spec.ingress[0].toPorts[0].ports[0]: HTTP rules apply only to TCP ports: set protocol: TCP (got "
                    "ANY)");
  EXPECT_EQ(ingress("toPorts: [{ports: [{port: \"53\"}], rules: {dns: [{matchPattern: \"*\"}]}}]"),
            where + "spec.ingress[0].toPorts[0].rules.dns: dns is not supported by pilus (pilus implements only http "
                    "rules)");
  EXPECT_EQ(ingress("toPorts: [{ports: [{port: \"80\", protocol: TCP}], rules: {http: [{methd: GET}]}}]"),
            where + "unknown field \"spec.ingress[0].toPorts[0].rules.http[0].methd\" (did you mean \"method\"?)");
  EXPECT_EQ(parse_error(kCnp + "  ingressDeny:\n  - toPorts: [{ports: [{port: \"80\", protocol: TCP}], rules: {http: "
                               "[{}]}}]\n"),
            where + "spec.ingressDeny[0].toPorts[0].rules: L7 rules are not allowed in deny rules");
  EXPECT_THAT(ingress("fromEndpoints: [{matchLabels: {\"pod:app\": x}}]"),
              HasSubstr("spec.ingress[0].fromEndpoints[0].matchLabels[\"pod:app\"]: unknown label source \"pod\""));
  EXPECT_THAT(ingress("fromEndpoints: [{matchExpressions: [{key: app, operator: exists}]}]"),
              HasSubstr("spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator: must be one of In, NotIn, "
                        "Exists, DoesNotExist, got \"exists\""));
  EXPECT_THAT(parse_error(with(kCnp, "app: api", "\"k8s:io.kubernetes.pod.namespace\": other")),
              HasSubstr("spec.endpointSelector: selects namespace \"other\", but this policy is in namespace \"shop\""));
  EXPECT_EQ(parse_error(with(kCcnp, "  name: ccnp\n", "  name: ccnp\n  namespace: shop\n")),
            "policy.yaml document 1 (CiliumClusterwideNetworkPolicy ccnp): unknown field \"metadata.namespace\"");
  EXPECT_EQ(parse_error(with(kCnp, "cilium.io/v2", "cilium.io/v1")),
            where + "apiVersion: \"cilium.io/v1\" is not supported for kind CiliumNetworkPolicy (use \"cilium.io/v2\")");
  EXPECT_EQ(parse_error(with(kCnp, "spec:\n  endpointSelector:\n    matchLabels:\n      app: api\n", "specs: []\n")),
            where + "specs: must list at least one rule");
}

TEST(CiliumPolicy, NamedPortsAreLowercased) {
  ConvertedPolicy c = convert_yaml(kCnp + "  ingress:\n  - toPorts: [{ports: [{port: HTTP, protocol: TCP}]}]\n");
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_EQ(c.rules[0].ports[0].port_name, "http");
}

}  // namespace
}  // namespace pilus::policy
