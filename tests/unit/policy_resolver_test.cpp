// Unit tests of the policy resolver: real policy YAML, hand-built endpoints and identities, verdicts from evaluate().
#include <netinet/in.h>

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "abi/drop_reasons.h"
#include "abi/identity.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "endpoint/ipv4.h"
#include "identity/labels.h"
#include "manifest/document.h"
#include "manifest/object.h"
#include "policy/policy_conversion.h"
#include "policy/policy_resolver.h"
#include "proxy/l7_policy.h"
#include "example_manifests.h"

namespace pilus::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint8_t kIn = METRIC_INGRESS;
constexpr uint8_t kOut = METRIC_EGRESS;
constexpr uint8_t kTcp = IPPROTO_TCP;
constexpr uint8_t kUdp = IPPROTO_UDP;
constexpr uint8_t kIcmp = IPPROTO_ICMP;

// A pod as the resolver sees it: local pods have an endpoint id, remote ones only an identity.
struct PodRef {
  uint16_t endpoint = 0;
  uint32_t identity = 0;
  endpoint::Ipv4 ip;
};

// One node's worth of resolver input, filled the way the agent fills it: pods with their
// identity labels, the reserved identities, CIDR identities for every prefix a rule names.
class Node {
 public:
  Node() {
    in_.identities.push_back({IDENTITY_HOST, identity::LabelSet{{"reserved", "host", ""}}});
    in_.identities.push_back({IDENTITY_WORLD, identity::LabelSet{{"reserved", "world", ""}}});
    in_.identities.push_back({IDENTITY_REMOTE_NODE, identity::LabelSet{{"reserved", "remote-node", ""}}});
    in_.host_ips.push_back(endpoint::parse_ipv4("10.244.1.1"));
  }

  // A local pod (it has an endpoint) at `ip`, with containerPorts for named ports.
  PodRef pod(const std::string& ip, const std::map<std::string, std::string>& labels, const std::string& ns = "default",
             std::vector<manifest::ContainerPort> ports = {}) {
    PodRef ref = identity_for(labels, ns);
    ref.endpoint = next_endpoint_++;
    ref.ip = endpoint::parse_ipv4(ip);
    EndpointView ep;
    ep.id = ref.endpoint;
    ep.identity = ref.identity;
    ep.labels = identity::pod_labels(labels, ns, namespace_labels_[ns]);
    ep.ip = ref.ip;
    ep.ports = std::move(ports);
    in_.endpoints.push_back(std::move(ep));
    return ref;
  }

  void namespace_labels(const std::string& ns, std::map<std::string, std::string> labels) {
    namespace_labels_[ns] = std::move(labels);
  }

  // Every object of a YAML stream, parsed and converted as `pilus apply` does.
  void apply(const std::string& yaml) {
    for (const manifest::Document& doc : manifest::parse_documents({"test.yaml", yaml})) {
      ConvertedPolicy c = convert_policy(manifest::parse_object(doc));
      if (c.rules.empty() && c.default_deny.empty()) throw std::logic_error("not a policy: " + doc.describe());
      in_.rules.insert(in_.rules.end(), c.rules.begin(), c.rules.end());
      in_.default_deny.insert(in_.default_deny.end(), c.default_deny.begin(), c.default_deny.end());
      notes_.insert(notes_.end(), c.notes.begin(), c.notes.end());
      warnings_.insert(warnings_.end(), c.warnings.begin(), c.warnings.end());
    }
  }

  const ResolvedPolicy& resolve() {
    in_.cidr_identities.clear();
    uint32_t next = IDENTITY_FIRST_LOCAL;
    for (const auto& prefix : cidr_prefixes(in_.rules)) in_.cidr_identities[prefix] = next++;
    resolved_ = policy::resolve(in_);
    return resolved_;
  }

  // The identity the ipcache would give an outside address: its longest CIDR prefix, else world.
  uint32_t outside_identity(const std::string& ip) const {
    endpoint::Ipv4 addr = endpoint::parse_ipv4(ip);
    uint32_t id = IDENTITY_WORLD;
    int best = -1;
    for (const auto& [prefix, cidr_id] : in_.cidr_identities)
      if (prefix.contains(addr) && prefix.length > best) best = prefix.length, id = cidr_id;
    return id;
  }

  // "ALLOWED by <policy> <path>", "ALLOWED (no entry)", "DENIED POLICY_DENY by <policy> <path>",
  // "DENIED POLICY_DENIED": one string, so a failure shows the whole verdict.
  // The CIDR identity the datapath finds for an address in policy_cidrs: its longest policy CIDR, or 0.
  uint32_t cidr_identity_of(endpoint::Ipv4 addr) const {
    uint32_t id = 0;
    int best = -1;
    for (const auto& [prefix, cidr_id] : in_.cidr_identities)
      if (prefix.contains(addr) && prefix.length > best) best = prefix.length, id = cidr_id;
    return id;
  }

  // A peer given by a CIDR identity is an outside address: world in the ipcache, that CIDR in policy_cidrs.
  std::string verdict(const PodRef& local, uint8_t direction, uint32_t peer, uint8_t proto, uint16_t port) const {
    if (peer >= IDENTITY_FIRST_LOCAL) return verdict_with_cidr(local, direction, IDENTITY_WORLD, peer, proto, port);
    return verdict_with_cidr(local, direction, peer, 0, proto, port);
  }
  // A peer at an address: its identity, and the CIDR identity its address has.
  std::string ingress_from(const PodRef& to, const PodRef& from, uint8_t proto, uint16_t port) const {
    return verdict_with_cidr(to, kIn, from.identity, cidr_identity_of(from.ip), proto, port);
  }
  std::string ingress_at(const PodRef& to, uint32_t identity, const std::string& ip, uint8_t proto, uint16_t port) const {
    return verdict_with_cidr(to, kIn, identity, cidr_identity_of(endpoint::parse_ipv4(ip)), proto, port);
  }
  std::string verdict_with_cidr(const PodRef& local, uint8_t direction, uint32_t peer, uint32_t peer_cidr,
                                uint8_t proto, uint16_t port, uint16_t peer_endpoint = 0) const {
    Verdict v = evaluate(resolved_, local.endpoint, direction, peer, proto, port, peer_cidr, peer_endpoint);
    std::string out = v.allowed ? "ALLOWED" : "DENIED";
    if (!v.allowed) {
      out += v.drop_reason == DROP_POLICY_DENY     ? " POLICY_DENY"
             : v.drop_reason == DROP_POLICY_DENIED ? " POLICY_DENIED"
                                                   : " reason " + std::to_string(v.drop_reason);
    }
    if (v.entry) {
      const PolicyRule& r = in_.rules.at(v.entry->rules.front());
      out += " by " + policy_name(r.policy_kind, r.policy_namespace, r.policy_name) + " " + r.source_path;
    } else if (v.allowed) {
      out += " (no entry)";
    }
    return out;
  }
  std::string ingress(const PodRef& to, uint32_t from, uint8_t proto, uint16_t port) const {
    return verdict(to, kIn, from, proto, port);
  }
  std::string egress(const PodRef& from, uint32_t to, uint8_t proto, uint16_t port) const {
    return verdict(from, kOut, to, proto, port);
  }
  // Egress towards a local pod, as the datapath sees it: its identity, its address's CIDR
  // identity and its endpoint (named ports resolve on it).
  std::string egress_to(const PodRef& from, const PodRef& to, uint8_t proto, uint16_t port) const {
    return verdict_with_cidr(from, kOut, to.identity, cidr_identity_of(to.ip), proto, port, to.endpoint);
  }

  const ResolverInput& input() const { return in_; }
  const ResolvedPolicy& resolved() const { return resolved_; }
  void set_proxy_port(uint16_t port) { in_.proxy_port = port; }
  void set_refs(PolicyRefTable* refs) { in_.refs = refs; }
  // As the agent does for a pod's proxy-visibility annotation.
  void add_visibility(const PodRef& pod, std::vector<VisibilityPort> ports) {
    PolicyRule rule;
    rule.policy_kind = "Pod";
    rule.policy_name = "p";
    rule.visibility_only = true;
    rule.http = {HttpRule{}};
    for (auto& ep : in_.endpoints)
      if (ep.id == pod.endpoint) ep.visibility = ports, ep.visibility_rule = in_.rules.size();
    in_.rules.push_back(std::move(rule));
  }
  const std::vector<std::string>& notes() const { return notes_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  PodRef identity_for(const std::map<std::string, std::string>& labels, const std::string& ns) {
    identity::LabelSet set = identity::pod_labels(labels, ns, namespace_labels_[ns]);
    for (const auto& id : in_.identities)
      if (id.labels == set) return {0, id.id, {}};
    uint32_t id = next_identity_++;
    in_.identities.push_back({id, set});
    return {0, id, {}};
  }

  ResolverInput in_;
  ResolvedPolicy resolved_;
  std::map<std::string, std::map<std::string, std::string>> namespace_labels_;
  std::vector<std::string> notes_, warnings_;
  uint16_t next_endpoint_ = 1;
  uint32_t next_identity_ = IDENTITY_FIRST_POD;
};

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

#define EXPECT_ALLOWED(v) EXPECT_TRUE(starts_with(v, "ALLOWED")) << v
#define EXPECT_DEFAULT_DENIED(v) EXPECT_EQ(v, "DENIED POLICY_DENIED")
#define EXPECT_DENIED_BY_RULE(v, who) EXPECT_EQ(v, std::string("DENIED POLICY_DENY by ") + who)

// ---------------------------------------------------------------- the seed's NetworkPolicy

const std::string kAllowHttp = pilus::testing::example_manifest("policies/allow-http.yaml");

TEST(PolicyResolver, AllowHttpLetsOnlyFrontendPodsOfItsNamespaceReachBackendOnTcp80) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef frontend = node.pod("10.244.1.11", {{"app", "frontend"}});
  PodRef other = node.pod("10.244.1.12", {{"app", "other"}});
  PodRef prod_frontend = node.pod("10.244.1.13", {{"app", "frontend"}}, "prod");
  node.apply(kAllowHttp);
  node.resolve();

  EXPECT_EQ(node.ingress(backend, frontend.identity, kTcp, 80),
            "ALLOWED by NetworkPolicy default/allow-http spec.ingress[0]");
  EXPECT_DEFAULT_DENIED(node.ingress(backend, frontend.identity, kTcp, 81));
  EXPECT_DEFAULT_DENIED(node.ingress(backend, frontend.identity, kTcp, 8080));
  EXPECT_DEFAULT_DENIED(node.ingress(backend, frontend.identity, kUdp, 80));
  EXPECT_DEFAULT_DENIED(node.ingress(backend, frontend.identity, kIcmp, 0));
  EXPECT_DEFAULT_DENIED(node.ingress(backend, other.identity, kTcp, 80));
  EXPECT_DEFAULT_DENIED(node.ingress(backend, prod_frontend.identity, kTcp, 80)) << "podSelector is namespace-local";
  EXPECT_DEFAULT_DENIED(node.ingress(backend, IDENTITY_WORLD, kTcp, 80));

  // Egress of the backend and everything about the other pods is untouched.
  EXPECT_EQ(node.egress(backend, other.identity, kTcp, 443), "ALLOWED (no entry)");
  EXPECT_EQ(node.ingress(frontend, other.identity, kTcp, 80), "ALLOWED (no entry)");
  EXPECT_EQ(node.ingress(prod_frontend, other.identity, kUdp, 53), "ALLOWED (no entry)");
  EXPECT_EQ(node.egress(frontend, backend.identity, kTcp, 80), "ALLOWED (no entry)");
}

TEST(PolicyResolver, TwoPoliciesSelectingOnePodAllowTheUnionOfTheirRules) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef frontend = node.pod("10.244.1.11", {{"app", "frontend"}});
  PodRef monitor = node.pod("10.244.1.12", {{"app", "monitor"}});
  node.apply(kAllowHttp + R"yaml(---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-metrics}
spec:
  podSelector: {matchLabels: {app: backend}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: monitor}}}]
    ports: [{port: 9090}]
)yaml");
  node.resolve();
  EXPECT_ALLOWED(node.ingress(backend, frontend.identity, kTcp, 80));
  EXPECT_DEFAULT_DENIED(node.ingress(backend, frontend.identity, kTcp, 9090));
  EXPECT_EQ(node.ingress(backend, monitor.identity, kTcp, 9090),
            "ALLOWED by NetworkPolicy default/allow-metrics spec.ingress[0]");
  EXPECT_DEFAULT_DENIED(node.ingress(backend, monitor.identity, kTcp, 80));
}

// ---------------------------------------------------------------- ports

TEST(PolicyResolver, PortRangeAllowsExactlyPortToEndPort) {
  Node node;
  PodRef server = node.pod("10.244.1.10", {{"app", "server"}});
  PodRef client = node.pod("10.244.1.11", {{"app", "client"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: range}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports:
      - {port: "8000", endPort: 8080, protocol: TCP}
      - {port: "1023", endPort: 1025, protocol: UDP}
      - {port: "65534", endPort: 65535, protocol: TCP}
)yaml");
  node.resolve();
  for (uint16_t port : {8000, 8001, 8040, 8063, 8064, 8079, 8080})
    EXPECT_ALLOWED(node.ingress(server, client.identity, kTcp, port)) << port;
  for (uint16_t port : {7999, 8081, 8096, 7936})
    EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kTcp, port)) << port;
  EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kUdp, 8000)) << "the range is TCP only";

  // A range that crosses a power of two on both sides.
  for (uint16_t port : {1023, 1024, 1025}) EXPECT_ALLOWED(node.ingress(server, client.identity, kUdp, port)) << port;
  for (uint16_t port : {1022, 1026, 1027}) EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kUdp, port)) << port;
  EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kTcp, 1024));

  // The last port of all.
  EXPECT_ALLOWED(node.ingress(server, client.identity, kTcp, 65535));
  EXPECT_ALLOWED(node.ingress(server, client.identity, kTcp, 65534));
  EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kTcp, 65533));
}

TEST(PolicyResolver, NetworkPolicyEndPortRangeEdges) {
  Node node;
  PodRef server = node.pod("10.244.1.10", {{"app", "server"}});
  PodRef client = node.pod("10.244.1.11", {{"app", "client"}});
  node.apply(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: range}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports:
    - {protocol: TCP, port: 32000, endPort: 32768}
    - {protocol: UDP, port: 1, endPort: 3}
)yaml");
  node.resolve();
  for (uint16_t port : {32000, 32001, 32767, 32768}) EXPECT_ALLOWED(node.ingress(server, client.identity, kTcp, port)) << port;
  for (uint16_t port : {31999, 32769, 31744}) EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kTcp, port)) << port;
  for (uint16_t port : {1, 2, 3}) EXPECT_ALLOWED(node.ingress(server, client.identity, kUdp, port)) << port;
  EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kUdp, 4));
  EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kUdp, 0));
}

TEST(PolicyResolver, NamedPortResolvesPerSelectedPod) {
  Node node;
  PodRef web_a = node.pod("10.244.1.10", {{"app", "web"}, {"v", "a"}}, "default", {{"http", 8080, "TCP"}});
  PodRef web_b = node.pod("10.244.1.11", {{"app", "web"}, {"v", "b"}}, "default",
                          {{"http", 9090, "TCP"}, {"metrics", 9100, "TCP"}});
  PodRef client = node.pod("10.244.1.12", {{"app", "client"}}, "default", {{"dns", 53, "UDP"}});
  node.apply(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: http}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: named-egress}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
  - toPorts: [{ports: [{port: dns, protocol: UDP}]}]
)yaml");
  node.resolve();
  EXPECT_ALLOWED(node.ingress(web_a, client.identity, kTcp, 8080));
  EXPECT_DEFAULT_DENIED(node.ingress(web_a, client.identity, kTcp, 9090)) << "9090 is http only in web-b";
  EXPECT_ALLOWED(node.ingress(web_b, client.identity, kTcp, 9090));
  EXPECT_DEFAULT_DENIED(node.ingress(web_b, client.identity, kTcp, 8080)) << "8080 is http only in web-a";
  EXPECT_DEFAULT_DENIED(node.ingress(web_b, client.identity, kTcp, 9100));
  EXPECT_DEFAULT_DENIED(node.ingress(web_a, client.identity, kUdp, 8080)) << "http is a TCP port";

  // Egress named ports resolve on each destination pod: dns is 53/UDP on client only.
  EXPECT_EQ(node.egress_to(web_a, client, kUdp, 53),
            "ALLOWED by CiliumNetworkPolicy default/named-egress spec.egress[0].toPorts[0]");
  EXPECT_DEFAULT_DENIED(node.egress_to(web_a, web_b, kUdp, 53)) << "web-b has no port named dns";
  EXPECT_DEFAULT_DENIED(node.egress(web_a, IDENTITY_WORLD, kUdp, 53)) << "the world has no named ports";
  EXPECT_DEFAULT_DENIED(node.egress_to(web_a, client, kTcp, 53));
  EXPECT_DEFAULT_DENIED(node.egress_to(web_b, client, kUdp, 54));
}

// proxy-visibility: allowed traffic on the port goes through the proxy with an allow-all HTTP
// rule; nothing more is allowed, denied traffic stays denied, other ports stay off the proxy.
TEST(PolicyResolver, ProxyVisibilityRedirectsWhatIsAllowedAndNothingMore) {
  Node node;
  PodRef server = node.pod("10.244.1.10", {{"app", "server"}});
  PodRef client = node.pod("10.244.1.11", {{"app", "client"}});
  PodRef other = node.pod("10.244.1.12", {{"app", "other"}});
  PodRef open = node.pod("10.244.1.13", {{"app", "open"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server-from-client}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
)yaml");
  node.set_proxy_port(15001);
  node.add_visibility(server, {{Direction::kIngress, 80}});
  node.add_visibility(open, {{Direction::kIngress, 80}});
  const ResolvedPolicy& r = node.resolve();
  Verdict v = evaluate(r, server.endpoint, kIn, client.identity, kTcp, 80);
  ASSERT_TRUE(v.allowed && v.entry);
  EXPECT_EQ(ntohs(v.entry->value.proxy_port), 15001);
  EXPECT_TRUE(node.input().rules.at(v.entry->rules.back()).visibility_only);
  v = evaluate(r, server.endpoint, kIn, client.identity, kTcp, 81);
  ASSERT_TRUE(v.allowed && v.entry);
  EXPECT_EQ(v.entry->value.proxy_port, 0) << "other ports stay off the proxy";
  EXPECT_DEFAULT_DENIED(node.ingress(server, other.identity, kTcp, 80)) << "visibility allows nothing new";
  // A pod no policy selects: every peer on 80 goes through the proxy, and stays allowed.
  v = evaluate(r, open.endpoint, kIn, other.identity, kTcp, 80);
  ASSERT_TRUE(v.allowed && v.entry);
  EXPECT_EQ(ntohs(v.entry->value.proxy_port), 15001);
  EXPECT_EQ(r.endpoints.at(open.endpoint).flags & ENDPOINT_F_INGRESS_ENFORCED, 0);
}

// The conformance case: a policy selecting every pod of the namespace with egress ports
// [{port: web}] allows, per destination, that destination's port named web and nothing else,
// even between pods sharing one identity.
TEST(PolicyResolver, EgressNamedPortResolvesPerDestinationPod) {
  Node node;
  PodRef client = node.pod("10.244.1.10", {{"app", "client"}});
  PodRef web81 = node.pod("10.244.1.11", {{"app", "server"}}, "default", {{"web", 81, "TCP"}});
  PodRef web80 = node.pod("10.244.1.12", {{"app", "server"}}, "default", {{"web", 80, "TCP"}, {"alt", 81, "TCP"}});
  PodRef none = node.pod("10.244.1.13", {{"app", "other"}}, "default", {{"http", 80, "TCP"}});
  PodRef udp = node.pod("10.244.1.14", {{"app", "other"}, {"p", "udp"}}, "default", {{"web", 80, "UDP"}});
  ASSERT_EQ(web81.identity, web80.identity) << "same labels, one identity";
  node.apply(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-web}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - ports: [{port: web}]
)yaml");
  node.resolve();
  EXPECT_EQ(node.egress_to(client, web81, kTcp, 81), "ALLOWED by NetworkPolicy default/egress-web spec.egress[0]");
  EXPECT_DEFAULT_DENIED(node.egress_to(client, web81, kTcp, 80)) << "80 is not web on this pod";
  EXPECT_EQ(node.egress_to(client, web80, kTcp, 80), "ALLOWED by NetworkPolicy default/egress-web spec.egress[0]");
  EXPECT_DEFAULT_DENIED(node.egress_to(client, web80, kTcp, 81)) << "81 is alt here, though web on a same-identity pod";
  EXPECT_DEFAULT_DENIED(node.egress_to(client, none, kTcp, 80)) << "no port named web";
  EXPECT_DEFAULT_DENIED(node.egress_to(client, udp, kUdp, 80)) << "web is UDP there; the rule's protocol is TCP";
  EXPECT_DEFAULT_DENIED(node.egress_to(client, udp, kTcp, 80));
  // The datapath looks these entries up only for endpoints flagged to have them.
  EXPECT_TRUE(node.resolved().endpoints.at(client.endpoint).flags & ENDPOINT_F_EGRESS_PER_PEER);
}

// protocol: SCTP is accepted with a warning and allows nothing, never TCP or UDP.
TEST(PolicyResolver, SctpPortAllowsNothing) {
  Node node;
  PodRef server = node.pod("10.244.1.10", {{"app", "server"}});
  PodRef client = node.pod("10.244.1.11", {{"app", "client"}});
  node.apply(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: sctp}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - ports: [{port: 80, protocol: SCTP}]
)yaml");
  node.resolve();
  EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kTcp, 80));
  EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kUdp, 80));
  EXPECT_THAT(node.warnings(), ::testing::ElementsAre(HasSubstr("SCTP traffic is not supported by pilus")));
}

// With a reference table, every entry names its rule stably and each default-deny direction
// names the policies that made it so (for drop events).
TEST(PolicyResolver, EntriesCarryStableReferences) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  node.pod("10.244.1.11", {{"app", "frontend"}});
  node.apply(kAllowHttp);
  PolicyRefTable refs;
  node.set_refs(&refs);
  const ResolvedPolicy& r = node.resolve();
  bool saw_rule = false, saw_default = false;
  for (const auto& [k, e] : r.entries) {
    std::vector<PolicyRef> named = refs.lookup(e.value.rule_id);
    ASSERT_EQ(named.size(), 1u);
    EXPECT_EQ(named[0].name, "allow-http");
    if (k.peer_kind == POLICY_PEER_DEFAULT_DENY) {
      saw_default = true;
      EXPECT_EQ(k.endpoint_id, backend.endpoint);
      EXPECT_EQ(named[0].rule_index, -1);
      EXPECT_EQ(to_string(named[0]), "NetworkPolicy default/allow-http");
    } else {
      saw_rule = true;
      EXPECT_EQ(to_string(named[0]), "NetworkPolicy default/allow-http spec.ingress[0]");
    }
  }
  EXPECT_TRUE(saw_rule && saw_default);
  // The same content gets the same id again; different content another.
  policy_key dd{};
  dd.prefixlen = POLICY_PREFIX_ANY_PROTO;
  dd.endpoint_id = backend.endpoint;
  dd.direction = kIn;
  dd.peer_kind = POLICY_PEER_DEFAULT_DENY;
  ASSERT_TRUE(node.resolve().entries.count(dd));
  EXPECT_EQ(node.resolved().entries.at(dd).value.rule_id,
            refs.intern({PolicyRef{"NetworkPolicy", "default", "allow-http", -1, ""}}));
  EXPECT_NE(refs.intern({PolicyRef{"NetworkPolicy", "default", "a", -1, ""}}),
            refs.intern({PolicyRef{"NetworkPolicy", "default", "b", -1, ""}}));
}

TEST(PolicyResolver, AnyProtocolCoversTcpAndUdpButNotIcmp) {
  Node node;
  PodRef dns = node.pod("10.244.1.10", {{"app", "dns"}});
  PodRef client = node.pod("10.244.1.11", {{"app", "client"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: any-proto}
spec:
  endpointSelector: {matchLabels: {app: dns}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "53"}, {port: "5353", protocol: ANY}]}]
)yaml");
  node.resolve();
  for (uint16_t port : {53, 5353}) {
    EXPECT_ALLOWED(node.ingress(dns, client.identity, kTcp, port)) << port;
    EXPECT_ALLOWED(node.ingress(dns, client.identity, kUdp, port)) << port;
  }
  EXPECT_DEFAULT_DENIED(node.ingress(dns, client.identity, kTcp, 54));
  EXPECT_DEFAULT_DENIED(node.ingress(dns, client.identity, kUdp, 5354));
  EXPECT_DEFAULT_DENIED(node.ingress(dns, client.identity, kIcmp, 0)) << "a port rule never allows ICMP";
}

TEST(PolicyResolver, IcmpIsAllowedOnlyByRulesWithoutPortsAndDeniedByThem) {
  Node node;
  PodRef server = node.pod("10.244.1.10", {{"app", "server"}});
  PodRef l3 = node.pod("10.244.1.11", {{"app", "l3"}});
  PodRef l4 = node.pod("10.244.1.12", {{"app", "l4"}});
  PodRef denied = node.pod("10.244.1.13", {{"app", "denied"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: icmp}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: l3}}]
  - fromEndpoints: [{matchLabels: {app: l4}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: denied}}]
)yaml");
  node.resolve();
  EXPECT_EQ(node.ingress(server, l3.identity, kIcmp, 0), "ALLOWED by CiliumNetworkPolicy default/icmp spec.ingress[0]");
  // The echo id travels where a port would: it must not matter.
  EXPECT_ALLOWED(node.ingress(server, l3.identity, kIcmp, 4242));
  EXPECT_DEFAULT_DENIED(node.ingress(server, l4.identity, kIcmp, 0));
  EXPECT_DEFAULT_DENIED(node.ingress(server, l4.identity, kIcmp, 80));
  EXPECT_DENIED_BY_RULE(node.ingress(server, denied.identity, kIcmp, 0), "CiliumNetworkPolicy default/icmp spec.ingressDeny[0]");
}

// ---------------------------------------------------------------- deny precedence

TEST(PolicyResolver, DenyAnyPortBeatsAllowOfPort80ForTheSamePeer) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef frontend = node.pod("10.244.1.11", {{"app", "frontend"}});
  PodRef other = node.pod("10.244.1.12", {{"app", "other"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-80}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: frontend}}, {matchLabels: {app: other}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-frontend}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: frontend}}]
)yaml");
  node.resolve();
  EXPECT_DENIED_BY_RULE(node.ingress(backend, frontend.identity, kTcp, 80),
                        "CiliumNetworkPolicy default/deny-frontend spec.ingressDeny[0]");
  EXPECT_DENIED_BY_RULE(node.ingress(backend, frontend.identity, kUdp, 53),
                        "CiliumNetworkPolicy default/deny-frontend spec.ingressDeny[0]");
  EXPECT_EQ(node.ingress(backend, other.identity, kTcp, 80), "ALLOWED by CiliumNetworkPolicy default/allow-80 spec.ingress[0].toPorts[0]");
  EXPECT_DEFAULT_DENIED(node.ingress(backend, other.identity, kTcp, 81));
}

// Fails today (pilus bug): when an allow and a deny produce the very same map key, the entry
// keeps the rule_id of whichever rule came first (here the allow), so `pilus policy trace` and
// `pilus bpf policy get` name an allow rule as the reason for a POLICY_DENY drop.
TEST(PolicyResolver, ADenyEntryNamesTheDenyRuleEvenWhenAnAllowMadeTheSameKey) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef bad = node.pod("10.244.1.11", {{"app", "bad"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-cluster}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress: [{fromEntities: [cluster]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-bad}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingressDeny: [{fromEndpoints: [{matchLabels: {app: bad}}]}]
)yaml");
  node.resolve();
  EXPECT_DENIED_BY_RULE(node.ingress(backend, bad.identity, kTcp, 80), "CiliumNetworkPolicy default/deny-bad spec.ingressDeny[0]");
  EXPECT_DENIED_BY_RULE(node.ingress(backend, bad.identity, kIcmp, 0), "CiliumNetworkPolicy default/deny-bad spec.ingressDeny[0]");
}

TEST(PolicyResolver, DenyForEveryIdentityBeatsAllowForOne) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef admin = node.pod("10.244.1.11", {{"app", "admin"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: admin-all}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: admin}}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: no-ssh}
spec:
  endpointSelector: {matchLabels: {app: backend}}
  ingressDeny:
  - toPorts: [{ports: [{port: "22", protocol: TCP}]}]
  - fromEntities: [all]
    toPorts: [{ports: [{port: "6000", endPort: 6010, protocol: TCP}]}]
)yaml");
  node.resolve();
  EXPECT_DENIED_BY_RULE(node.ingress(backend, admin.identity, kTcp, 22), "CiliumNetworkPolicy default/no-ssh spec.ingressDeny[0].toPorts[0]");
  EXPECT_DENIED_BY_RULE(node.ingress(backend, IDENTITY_WORLD, kTcp, 22), "CiliumNetworkPolicy default/no-ssh spec.ingressDeny[0].toPorts[0]");
  for (uint16_t port : {6000, 6005, 6010})
    EXPECT_DENIED_BY_RULE(node.ingress(backend, admin.identity, kTcp, port), "CiliumNetworkPolicy default/no-ssh spec.ingressDeny[1].toPorts[0]") << port;
  EXPECT_EQ(node.ingress(backend, admin.identity, kTcp, 5999), "ALLOWED by CiliumNetworkPolicy default/admin-all spec.ingress[0]");
  EXPECT_EQ(node.ingress(backend, admin.identity, kTcp, 6011), "ALLOWED by CiliumNetworkPolicy default/admin-all spec.ingress[0]");
  EXPECT_ALLOWED(node.ingress(backend, admin.identity, kUdp, 22)) << "the deny is TCP only";
  EXPECT_DEFAULT_DENIED(node.ingress(backend, IDENTITY_WORLD, kTcp, 80));
}

TEST(PolicyResolver, NarrowDenyInsideABroadAllowRangeLeavesTheRestAllowed) {
  Node node;
  PodRef server = node.pod("10.244.1.10", {{"app", "server"}});
  PodRef client = node.pod("10.244.1.11", {{"app", "client"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: mixed}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "1", endPort: 1023, protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "440", endPort: 450, protocol: TCP}]}]
)yaml");
  node.resolve();
  EXPECT_ALLOWED(node.ingress(server, client.identity, kTcp, 439));
  for (uint16_t port : {440, 443, 450}) EXPECT_EQ(node.ingress(server, client.identity, kTcp, port).rfind("DENIED POLICY_DENY", 0), 0u) << port;
  EXPECT_ALLOWED(node.ingress(server, client.identity, kTcp, 451));
  EXPECT_ALLOWED(node.ingress(server, client.identity, kTcp, 1023));
  EXPECT_DEFAULT_DENIED(node.ingress(server, client.identity, kTcp, 1024));
}

// ---------------------------------------------------------------- CIDRs

TEST(PolicyResolver, CidrWithExceptMatchesPodAddressesAndCidrIdentities) {
  Node node;
  PodRef server = node.pod("10.244.1.10", {{"app", "server"}});
  PodRef inside = node.pod("10.244.1.100", {{"app", "inside"}});
  PodRef excepted = node.pod("10.244.1.200", {{"app", "excepted"}});
  PodRef outside = node.pod("10.244.2.5", {{"app", "elsewhere"}});
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cidr}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromCIDRSet:
    - cidr: 10.244.1.0/24
      except: [10.244.1.128/25]
    - cidr: 192.168.0.0/16
      except: [192.168.7.0/24]
)yaml");
  node.resolve();
  EXPECT_EQ(node.ingress_from(server, inside, kTcp, 80), "ALLOWED by CiliumNetworkPolicy default/cidr spec.ingress[0]");
  EXPECT_DEFAULT_DENIED(node.ingress_from(server, excepted, kTcp, 80)) << "10.244.1.200 is in the except";
  EXPECT_DEFAULT_DENIED(node.ingress_from(server, outside, kTcp, 80));
  EXPECT_ALLOWED(node.ingress_at(server, IDENTITY_HOST, "10.244.1.1", kTcp, 80)) << "the node's 10.244.1.1 is inside";
  EXPECT_ALLOWED(node.ingress(server, node.outside_identity("192.168.1.1"), kUdp, 53));
  EXPECT_DEFAULT_DENIED(node.ingress(server, node.outside_identity("192.168.7.7"), kUdp, 53));
  EXPECT_DEFAULT_DENIED(node.ingress(server, IDENTITY_WORLD, kUdp, 53));
}

TEST(PolicyResolver, IpBlockExceptExcludesPodsInsideIt) {
  Node node;
  PodRef server = node.pod("10.244.2.5", {{"app", "server"}});
  PodRef low = node.pod("10.244.1.10", {{"app", "low"}});
  PodRef high = node.pod("10.244.1.200", {{"app", "high"}});
  node.apply(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ipblock}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress:
  - from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.0/25]}}]
    ports: [{port: 80}]
)yaml");
  node.resolve();
  EXPECT_DEFAULT_DENIED(node.ingress_from(server, low, kTcp, 80)) << "10.244.1.10 is in the except";
  EXPECT_EQ(node.ingress_from(server, high, kTcp, 80), "ALLOWED by NetworkPolicy default/ipblock spec.ingress[0]");
  EXPECT_DEFAULT_DENIED(node.ingress_from(server, high, kTcp, 81));
  EXPECT_ALLOWED(node.ingress(server, node.outside_identity("10.244.9.9"), kTcp, 80)) << "a CIDR identity inside";
  EXPECT_DEFAULT_DENIED(node.ingress(server, node.outside_identity("10.244.1.99"), kTcp, 80)) << "the except's identity";
  EXPECT_DEFAULT_DENIED(node.ingress(server, IDENTITY_WORLD, kTcp, 80));
}

// Fails today (pilus bug): CIDR peers are resolved to identities, and replicas share one, so
// the pod in the except (or outside the CIDR) is allowed because its twin is inside. REFERENCE.md
// promises that a CIDR matches "every peer whose address is inside it".
TEST(PolicyResolver, CidrExceptStillExcludesAPodWhoseReplicaIsInside) {
  Node node;
  PodRef server = node.pod("10.244.1.10", {{"app", "server"}});
  PodRef inside = node.pod("10.244.1.100", {{"app", "web"}});
  PodRef excepted = node.pod("10.244.1.200", {{"app", "web"}});
  PodRef outside = node.pod("10.244.2.5", {{"app", "web"}});
  ASSERT_EQ(inside.identity, excepted.identity) << "replicas: same labels, same identity";
  // Replicas share an identity, so only the address (policy_cidrs) can tell them apart.
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cidr}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromCIDRSet:
    - cidr: 10.244.1.0/24
      except: [10.244.1.128/25]
)yaml");
  node.resolve();
  EXPECT_ALLOWED(node.ingress_from(server, inside, kTcp, 80)) << "10.244.1.100";
  EXPECT_DEFAULT_DENIED(node.ingress_from(server, excepted, kTcp, 80)) << "10.244.1.200 is in the except";
  EXPECT_DEFAULT_DENIED(node.ingress_from(server, outside, kTcp, 80)) << "10.244.2.5 is outside the CIDR";
}

// ---------------------------------------------------------------- entities

const std::string kEntities = R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: entities}
spec:
  endpointSelector: {matchLabels: {app: host-only}}
  ingress: [{fromEntities: [host]}]
  egress: [{toEntities: [host]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: world}
spec:
  endpointSelector: {matchLabels: {app: world-only}}
  ingress: [{fromEntities: [world]}]
  egress: [{toEntities: [world]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cluster}
spec:
  endpointSelector: {matchLabels: {app: cluster-only}}
  ingress: [{fromEntities: [cluster]}]
  egress: [{toEntities: [cluster]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: all}
spec:
  endpointSelector: {matchLabels: {app: all}}
  ingress: [{fromEntities: [all]}]
  egress: [{toEntities: [all]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cidr-for-world}
spec:
  endpointSelector: {matchLabels: {app: nobody}}
  egress: [{toCIDR: [203.0.113.0/24]}]
)yaml";

TEST(PolicyResolver, EntitiesHostWorldClusterAndAll) {
  Node node;
  PodRef host_only = node.pod("10.244.1.10", {{"app", "host-only"}});
  PodRef world_only = node.pod("10.244.1.11", {{"app", "world-only"}});
  PodRef cluster_only = node.pod("10.244.1.12", {{"app", "cluster-only"}});
  PodRef all = node.pod("10.244.1.13", {{"app", "all"}});
  PodRef peer = node.pod("10.244.1.14", {{"app", "peer"}}, "other");
  node.apply(kEntities);
  node.resolve();
  uint32_t cidr_id = node.outside_identity("203.0.113.9");
  ASSERT_NE(cidr_id, static_cast<uint32_t>(IDENTITY_WORLD));

  for (uint8_t dir : {kIn, kOut}) {
    SCOPED_TRACE(dir == kIn ? "ingress" : "egress");
    EXPECT_ALLOWED(node.verdict(host_only, dir, IDENTITY_HOST, kTcp, 80));
    EXPECT_DEFAULT_DENIED(node.verdict(host_only, dir, peer.identity, kTcp, 80));
    EXPECT_DEFAULT_DENIED(node.verdict(host_only, dir, IDENTITY_WORLD, kTcp, 80));

    EXPECT_ALLOWED(node.verdict(world_only, dir, IDENTITY_WORLD, kUdp, 53));
    EXPECT_ALLOWED(node.verdict(world_only, dir, cidr_id, kUdp, 53)) << "a CIDR outside the cluster is world";
    EXPECT_DEFAULT_DENIED(node.verdict(world_only, dir, peer.identity, kUdp, 53));
    EXPECT_DEFAULT_DENIED(node.verdict(world_only, dir, IDENTITY_HOST, kUdp, 53));

    EXPECT_ALLOWED(node.verdict(cluster_only, dir, peer.identity, kTcp, 80)) << "pods of every namespace";
    EXPECT_ALLOWED(node.verdict(cluster_only, dir, world_only.identity, kTcp, 80));
    EXPECT_ALLOWED(node.verdict(cluster_only, dir, IDENTITY_HOST, kTcp, 80));
    EXPECT_ALLOWED(node.verdict(cluster_only, dir, IDENTITY_REMOTE_NODE, kTcp, 80));
    EXPECT_DEFAULT_DENIED(node.verdict(cluster_only, dir, IDENTITY_WORLD, kTcp, 80));
    EXPECT_DEFAULT_DENIED(node.verdict(cluster_only, dir, cidr_id, kTcp, 80));

    for (uint32_t id : {static_cast<uint32_t>(IDENTITY_WORLD), static_cast<uint32_t>(IDENTITY_HOST), peer.identity, cidr_id})
      EXPECT_ALLOWED(node.verdict(all, dir, id, kUdp, 9999)) << id;
    EXPECT_ALLOWED(node.verdict(all, dir, peer.identity, kIcmp, 0));
  }
}

// ---------------------------------------------------------------- default deny

TEST(PolicyResolver, DefaultDenyOnlyInTheDirectionsAPolicyHas) {
  Node node;
  PodRef in_only = node.pod("10.244.1.10", {{"app", "in-only"}});
  PodRef out_only = node.pod("10.244.1.11", {{"app", "out-only"}});
  PodRef types_egress = node.pod("10.244.1.12", {{"app", "types-egress"}});
  PodRef cnp_both = node.pod("10.244.1.13", {{"app", "cnp-both"}});
  PodRef np_empty_egress = node.pod("10.244.1.14", {{"app", "np-empty-egress"}});
  PodRef peer = node.pod("10.244.1.20", {{"app", "peer"}});
  node.apply(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: in-only}
spec:
  podSelector: {matchLabels: {app: in-only}}
  ingress: [{from: [{podSelector: {matchLabels: {app: peer}}}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: out-only}
spec:
  endpointSelector: {matchLabels: {app: out-only}}
  egress: [{toEndpoints: [{matchLabels: {app: peer}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: types-egress}
spec:
  podSelector: {matchLabels: {app: types-egress}}
  policyTypes: [Egress]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cnp-both}
spec:
  endpointSelector: {matchLabels: {app: cnp-both}}
  ingress: []
  egress: []
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np-empty-egress}
spec:
  podSelector: {matchLabels: {app: np-empty-egress}}
  egress: []
)yaml");
  node.resolve();

  EXPECT_ALLOWED(node.ingress(in_only, peer.identity, kTcp, 80));
  EXPECT_DEFAULT_DENIED(node.ingress(in_only, out_only.identity, kTcp, 80));
  EXPECT_EQ(node.egress(in_only, out_only.identity, kTcp, 80), "ALLOWED (no entry)") << "no egress section";

  EXPECT_ALLOWED(node.egress(out_only, peer.identity, kUdp, 53));
  EXPECT_DEFAULT_DENIED(node.egress(out_only, in_only.identity, kUdp, 53));
  EXPECT_EQ(node.ingress(out_only, in_only.identity, kTcp, 80), "ALLOWED (no entry)") << "no ingress section";

  EXPECT_DEFAULT_DENIED(node.egress(types_egress, peer.identity, kTcp, 80));
  EXPECT_DEFAULT_DENIED(node.egress(types_egress, IDENTITY_HOST, kTcp, 80));
  EXPECT_EQ(node.ingress(types_egress, peer.identity, kTcp, 80), "ALLOWED (no entry)") << "policyTypes: [Egress] only";

  EXPECT_DEFAULT_DENIED(node.ingress(cnp_both, peer.identity, kTcp, 80)) << "pilus: ingress: [] is deny-all";
  EXPECT_DEFAULT_DENIED(node.egress(cnp_both, peer.identity, kTcp, 80)) << "pilus: egress: [] is deny-all";

  // A NetworkPolicy without policyTypes defaults to Ingress only; `egress: []` adds nothing.
  EXPECT_DEFAULT_DENIED(node.ingress(np_empty_egress, peer.identity, kTcp, 80));
  EXPECT_EQ(node.egress(np_empty_egress, peer.identity, kTcp, 80), "ALLOWED (no entry)");

  EXPECT_EQ(node.ingress(peer, in_only.identity, kTcp, 80), "ALLOWED (no entry)") << "peer is selected by nothing";

  const auto& eps = node.resolve().endpoints;
  EXPECT_EQ(eps.at(in_only.endpoint).flags, ENDPOINT_F_INGRESS_ENFORCED);
  EXPECT_EQ(eps.at(out_only.endpoint).flags, ENDPOINT_F_EGRESS_ENFORCED);
  EXPECT_EQ(eps.at(types_egress.endpoint).flags, ENDPOINT_F_EGRESS_ENFORCED);
  EXPECT_EQ(eps.at(cnp_both.endpoint).flags, ENDPOINT_F_INGRESS_ENFORCED | ENDPOINT_F_EGRESS_ENFORCED);
  EXPECT_EQ(eps.at(peer.endpoint).flags, 0);
  EXPECT_THAT(eps.at(cnp_both.endpoint).ingress_enforced_by,
              ::testing::ElementsAre("CiliumNetworkPolicy default/cnp-both"));
}

// ---------------------------------------------------------------- ingress: [{}]

TEST(PolicyResolver, NetworkPolicyEmptyRuleAllowsEverythingButCiliumEmptyRuleAllowsNothing) {
  Node node;
  PodRef np_pod = node.pod("10.244.1.10", {{"app", "np"}});
  PodRef cnp_pod = node.pod("10.244.1.11", {{"app", "cnp"}});
  PodRef peer = node.pod("10.244.1.12", {{"app", "peer"}}, "elsewhere");
  node.apply(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np-allow-all}
spec:
  podSelector: {matchLabels: {app: np}}
  ingress: [{}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cnp-empty-rule}
spec:
  endpointSelector: {matchLabels: {app: cnp}}
  ingress: [{}]
)yaml");
  node.resolve();
  for (uint32_t id : {peer.identity, cnp_pod.identity, static_cast<uint32_t>(IDENTITY_WORLD)}) {
    EXPECT_EQ(node.ingress(np_pod, id, kTcp, 80), "ALLOWED by NetworkPolicy default/np-allow-all spec.ingress[0]") << id;
    EXPECT_ALLOWED(node.ingress(np_pod, id, kUdp, 53)) << id;
    EXPECT_ALLOWED(node.ingress(np_pod, id, kIcmp, 0)) << id;
  }
  for (uint32_t id : {peer.identity, np_pod.identity, static_cast<uint32_t>(IDENTITY_WORLD)}) {
    EXPECT_DEFAULT_DENIED(node.ingress(cnp_pod, id, kTcp, 80)) << id;
    EXPECT_DEFAULT_DENIED(node.ingress(cnp_pod, id, kIcmp, 0)) << id;
  }
  // The Cilium rule produced no entry at all, and apply says why.
  for (const auto& [key, entry] : node.resolve().entries) EXPECT_NE(key.endpoint_id, cnp_pod.endpoint);
  bool noted = false;
  for (const auto& n : node.notes()) noted = noted || n.find("cnp-empty-rule") != std::string::npos;
  EXPECT_TRUE(noted) << "pilus apply should explain that a Cilium `{}` rule allows nothing";
}

// ---------------------------------------------------------------- namespaces

TEST(PolicyResolver, NamespaceSelectorAllowsOnlyPodsOfLabelledNamespaces) {
  Node node;
  node.namespace_labels("team-a", {{"team", "a"}});
  node.namespace_labels("team-b", {{"team", "b"}});
  PodRef api = node.pod("10.244.1.10", {{"app", "api"}}, "prod");
  PodRef a = node.pod("10.244.1.11", {{"app", "client"}}, "team-a");
  PodRef b = node.pod("10.244.1.12", {{"app", "client"}}, "team-b");
  PodRef local = node.pod("10.244.1.13", {{"app", "client"}}, "prod");
  node.apply(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-team-a, namespace: prod}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}}]
)yaml");
  node.resolve();
  EXPECT_EQ(node.ingress(api, a.identity, kTcp, 80), "ALLOWED by NetworkPolicy prod/from-team-a spec.ingress[0]");
  EXPECT_DEFAULT_DENIED(node.ingress(api, b.identity, kTcp, 80));
  EXPECT_DEFAULT_DENIED(node.ingress(api, local.identity, kTcp, 80)) << "its own namespace is not labelled team=a";
}

TEST(PolicyResolver, ClusterwidePolicySelectsPodsOfEveryNamespaceByLabel) {
  Node node;
  PodRef db1 = node.pod("10.244.1.10", {{"tier", "db"}}, "ns1");
  PodRef db2 = node.pod("10.244.1.11", {{"tier", "db"}}, "ns2");
  PodRef web1 = node.pod("10.244.1.12", {{"tier", "web"}}, "ns1");
  PodRef web2 = node.pod("10.244.1.13", {{"tier", "web"}}, "ns2");
  PodRef tool = node.pod("10.244.1.14", {{"tier", "tool"}}, "ns1");
  node.apply(R"yaml(apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: db-from-web}
spec:
  endpointSelector: {matchLabels: {tier: db}}
  ingress:
  - fromEndpoints: [{matchLabels: {tier: web}}]
    toPorts: [{ports: [{port: "5432", protocol: TCP}]}]
)yaml");
  node.resolve();
  for (const PodRef& db : {db1, db2}) {
    for (const PodRef& web : {web1, web2})
      EXPECT_EQ(node.ingress(db, web.identity, kTcp, 5432),
                "ALLOWED by CiliumClusterwideNetworkPolicy db-from-web spec.ingress[0].toPorts[0]");
    EXPECT_DEFAULT_DENIED(node.ingress(db, tool.identity, kTcp, 5432));
    EXPECT_DEFAULT_DENIED(node.ingress(db, web1.identity, kTcp, 5433));
  }
  EXPECT_EQ(node.ingress(web1, tool.identity, kTcp, 80), "ALLOWED (no entry)");
}


// Every entry carries the Hubble match type of its key, for the datapath's verdict events.
TEST(PolicyResolver, EntriesNameTheirMatchType) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef frontend = node.pod("10.244.1.11", {{"app", "frontend"}});
  node.apply(kAllowHttp);
  node.apply(R"yaml(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: mixed
spec:
  endpointSelector:
    matchLabels:
      app: frontend
  egress:
  - toEndpoints:
    - matchLabels:
        app: backend
  - toPorts:
    - ports:
      - port: "53"
        protocol: UDP
)yaml");
  const ResolvedPolicy& r = node.resolve();
  std::map<std::string, int> seen;
  for (const auto& [k, e] : r.entries) {
    EXPECT_EQ(e.value.match_type, policy_match_type_of(&k));
    std::string who = k.endpoint_id == backend.endpoint ? "backend" : "frontend";
    seen[who + (k.direction == kIn ? " in " : " out ") + std::to_string(e.value.match_type)]++;
  }
  EXPECT_EQ(seen["backend in " + std::to_string(POLICY_MATCH_L3_L4)], 1) << "frontend on TCP 80";
  EXPECT_EQ(seen["frontend out " + std::to_string(POLICY_MATCH_L3_ONLY)], 1) << "backend, any port";
  EXPECT_EQ(seen["frontend out " + std::to_string(POLICY_MATCH_L4_ONLY)], 1) << "anyone on UDP 53";
  EXPECT_EQ(seen.size(), 3u);
}

// ---------------------------------------------------------------- L7: proxy redirection

const std::string kAllowApiOnly = pilus::testing::example_manifest("policies/allow-api-only.yaml");

const std::string kL4Port80 = R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l4-80
spec:
  endpointSelector:
    matchLabels:
      app: backend
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: frontend
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
)yaml";

uint16_t proxy_port_of(const ResolvedPolicy& r, uint16_t ep, uint32_t peer, uint16_t port) {
  const auto entries = matching_entries(r, ep, kIn, peer, kTcp, port);
  return entries.empty() ? 0 : ntohs(entries.front()->value.proxy_port);
}

proxy::ConnectionOrigin ingress_origin(const PodRef& client, const PodRef& server, uint16_t port) {
  proxy::ConnectionOrigin o;
  o.client_ip = client.ip;
  o.client_identity = client.identity;
  o.client_endpoint = client.endpoint;
  o.server_ip = server.ip;
  o.server_identity = server.identity;
  o.server_endpoint = server.endpoint;
  o.server_port = port;
  o.ingress = true;
  return o;
}

TEST(PolicyResolverL7, HttpRulesPutTheProxyPortInTheirEntriesOnly) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef frontend = node.pod("10.244.1.11", {{"app", "frontend"}});
  node.apply(kAllowApiOnly);
  node.apply(kAllowHttp);  // an L4 rule for another peer set: untouched
  node.set_proxy_port(15001);
  const ResolvedPolicy& r = node.resolve();
  EXPECT_EQ(proxy_port_of(r, backend.endpoint, frontend.identity, 80), 0) << "allow-http allows port 80 at L4";

  Node l7only;
  backend = l7only.pod("10.244.1.10", {{"app", "backend"}});
  frontend = l7only.pod("10.244.1.11", {{"app", "frontend"}});
  l7only.apply(kAllowApiOnly);
  l7only.set_proxy_port(15001);
  EXPECT_EQ(proxy_port_of(l7only.resolve(), backend.endpoint, frontend.identity, 80), 15001);
  EXPECT_ALLOWED(l7only.ingress(backend, frontend.identity, kTcp, 80));
  EXPECT_DEFAULT_DENIED(l7only.ingress(backend, frontend.identity, kTcp, 81));
}

TEST(PolicyResolverL7, WithoutAProxyHttpRulesAreEnforcedAtL4) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef frontend = node.pod("10.244.1.11", {{"app", "frontend"}});
  node.apply(kAllowApiOnly);
  EXPECT_EQ(proxy_port_of(node.resolve(), backend.endpoint, frontend.identity, 80), 0);
}

TEST(PolicyResolverL7, ConnectionRulesCheckEachRequestAndAnL4AllowLetsAllThrough) {
  Node node;
  PodRef backend = node.pod("10.244.1.10", {{"app", "backend"}});
  PodRef frontend = node.pod("10.244.1.11", {{"app", "frontend"}});
  node.apply(kAllowApiOnly);
  node.set_proxy_port(15001);
  proxy::L7Policy l7(node.resolve(), node.input().rules, node.input().cidr_identities);
  EXPECT_EQ(l7.redirect_entries(), 1u);
  proxy::ConnectionRules rules = l7.for_connection(ingress_origin(frontend, backend, 80));
  proxy::RequestVerdict get = rules.check({"GET", "/api/users", "backend", {}});
  EXPECT_TRUE(get.allowed);
  EXPECT_EQ(get.policy, "default/allow-api-only");
  EXPECT_FALSE(rules.check({"POST", "/api/users", "backend", {}}).allowed);
  EXPECT_FALSE(rules.check({"GET", "/admin", "backend", {}}).allowed);

  node.apply(kL4Port80);
  proxy::L7Policy with_l4(node.resolve(), node.input().rules, node.input().cidr_identities);
  EXPECT_EQ(with_l4.redirect_entries(), 0u);
  EXPECT_TRUE(with_l4.for_connection(ingress_origin(frontend, backend, 80)).check({"POST", "/admin", "", {}}).allowed);
}

}  // namespace
}  // namespace pilus::policy
