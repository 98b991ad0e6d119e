// Parity of the two policy decision procedures: the C++ evaluator behind `pilus policy trace`
// and the L7 proxy (policy::evaluate, matching_entries) and the datapath's (bpf/lib/policy.h,
// lib/proxy.h) under BPF_PROG_TEST_RUN. Each row of one table is a policy (real YAML, converted
// and resolved as the agent does it) and one packet direction of one pod. The resolved policy
// is written to the maps the way the agent writes it (policy entries, policy_cidrs and their
// count, endpoint flags), so both sides decide from the same entries: the C++ side by evaluate(),
// the BPF side by running the pod programs. They must agree on the verdict, the drop reason and
// the reference the deciding entry carries; each row also states the verdict its author meant,
// so a table of rows where both sides are wrong alike still fails.
#include <arpa/inet.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "abi/drop_reasons.h"
#include "abi/endpoint.h"
#include "abi/events.h"
#include "abi/identity.h"
#include "abi/ipcache.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "abi/proxy.h"
#include "datapath_fixture.h"
#include "endpoint/ipv4.h"
#include "identity/labels.h"
#include "manifest/document.h"
#include "manifest/object.h"
#include "policy/policy_conversion.h"
#include "policy/policy_ref.h"
#include "policy/policy_resolver.h"

namespace pilus::test {
namespace {

using namespace tcp_flag;

constexpr uint8_t kIn = METRIC_INGRESS;
constexpr uint8_t kOut = METRIC_EGRESS;
constexpr uint8_t kTcp = IPPROTO_TCP;
constexpr uint8_t kUdp = IPPROTO_UDP;
constexpr uint8_t kIcmp = IPPROTO_ICMP;
constexpr const char* NODE_IP = "10.0.7.1";  // the node's address, where the L7 proxy listens
constexpr uint16_t PROXY_PORT = 15001;
constexpr int PARKED_IFINDEX = 0x7fff0000;  // a pod not under test: never the device a run arrives on

// The node's pods: every row runs against all of them.
struct PodSpec {
  const char* name;
  const char* ip;
  const char* ns;
  std::map<std::string, std::string> labels;
  std::vector<manifest::ContainerPort> ports;
};
const std::vector<PodSpec> kPods = {
    {"web", "10.0.7.10", "default", {{"app", "web"}}, {{"http", 8080, "TCP"}}},
    {"client", "10.0.7.11", "default", {{"app", "client"}}, {}},
    {"other", "10.0.7.12", "default", {{"app", "other"}}, {}},
    {"foreign", "10.0.7.13", "team-b", {{"app", "client"}}, {}},  // client's labels, another namespace
};

// --------------------------------------------------------------- the policies of the table

const char* const kNoPolicy = "";

const char* const kAllowClientOn80 = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 80, protocol: TCP}]
)";

const char* const kAllowClientAllPorts = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-all, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
)";

const char* const kAllowDns = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{port: 53, protocol: UDP}]
)";

const char* const kPortRange = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: range, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 8000, endPort: 8080, protocol: TCP}]
)";

const char* const kCidrExcept = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cidr-except, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromCIDRSet: [{cidr: 203.0.113.0/24, except: [203.0.113.128/25]}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
)";

// Pods match CIDRs by address too: web and client are in 10.0.7.8/30, other and foreign are not.
const char* const kEgressCidrToPods = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: egress-cidr, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toCIDRSet: [{cidr: 10.0.7.8/29, except: [10.0.7.12/30]}]
)";

const char* const kDenyOther = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-other, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEntities: [all]
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: other}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
)";

const char* const kDenyWorldCidr = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-cidr, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEntities: [world]
  ingressDeny:
  - fromCIDR: [198.51.100.0/24]
)";

// A deny of every peer on 80 beats an allow of one peer there (different entries).
const char* const kDenyAnyBeatsExactAllow = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-any, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
  ingressDeny:
  - toPorts: [{ports: [{port: "80", protocol: TCP}]}]
)";

const char* const kEgressDeny = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: egress-deny, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEntities: [all]
  egressDeny:
  - toEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
)";

const char* const kDefaultDenyBoth = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lockdown, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress, Egress]
)";

const char* const kEgressToHost = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: to-host, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEntities: [host]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
)";

const char* const kOtherNamespaceOnly = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: team-b-clients, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client, k8s:io.kubernetes.pod.namespace: team-b}}]
)";

const char* const kIngressNamedPort = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-in, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: http}]
)";

const char* const kEgressNamedPort = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-out, namespace: default}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: http}]
)";

const char* const kIngressL7 = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-in, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET, path: "/"}]}}]
)";

// A deny of every peer on the L7 port: the deny wins over the redirect.
const char* const kIngressL7DeniedForAll = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-denied, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET}]}}]
  ingressDeny:
  - toPorts: [{ports: [{port: "80", protocol: TCP}]}]
)";

// The same port allowed at L4 by another rule: no proxy.
const char* const kIngressL7AndL4 = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-and-l4, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET}]}}]
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
)";

const char* const kEgressL7 = R"(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-out, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: web}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{method: GET}]}}]
)";

// --------------------------------------------------------------- the table

// What one side decided for a packet direction. The reference is the deciding entry's
// rule_id (the default-deny record's for POLICY_DENIED, 0 when allowed by default).
enum class Decision { kAllowed, kProxied, kDeny, kDenied };

const char* name_of(Decision d) {
  switch (d) {
    case Decision::kAllowed: return "ALLOWED";
    case Decision::kProxied: return "PROXIED";
    case Decision::kDeny: return "DENIED POLICY_DENY";
    case Decision::kDenied: return "DENIED POLICY_DENIED";
  }
  return "?";
}

struct Outcome {
  Decision decision = Decision::kAllowed;
  uint32_t ref = 0;  // not compared for PROXIED: the redirect is decided before any stage reports
  bool operator==(const Outcome& o) const {
    return decision == o.decision && (decision == Decision::kProxied || ref == o.ref);
  }
};

std::string to_string(const Outcome& o) {
  return o.decision == Decision::kProxied ? name_of(o.decision) : fmt::format("{} ref {:#x}", name_of(o.decision), o.ref);
}

struct Row {
  const char* policy;   // YAML; several documents allowed
  const char* subject;  // the pod whose direction is judged
  uint8_t dir;
  const char* peer;  // a pod's name, or an address (the node's, or outside)
  uint8_t proto;
  uint16_t port;  // destination port; ignored for ICMP
  Decision expect;
};

std::string describe(const Row& r) {
  std::string policy = r.policy[0] ? std::string(r.policy) : std::string("(no policy)\n");
  return fmt::format("{} {} {} {} {}/{} (meant {})\npolicy:{}", r.subject, r.dir == kIn ? "ingress from" : "egress to",
                     r.peer, r.proto == kTcp ? "TCP" : r.proto == kUdp ? "UDP" : "ICMP", r.port,
                     r.proto == kIcmp ? "echo" : "", name_of(r.expect), policy);
}

using D = Decision;
// clang-format off
const std::vector<Row> kTable = {
    // No policy: everything is allowed by default, both ways.
    {kNoPolicy, "web", kIn, "client", kTcp, 80, D::kAllowed},
    {kNoPolicy, "web", kOut, "client", kTcp, 80, D::kAllowed},
    {kNoPolicy, "web", kIn, "203.0.113.9", kTcp, 80, D::kAllowed},
    // Identities and one port.
    {kAllowClientOn80, "web", kIn, "client", kTcp, 80, D::kAllowed},
    {kAllowClientOn80, "web", kIn, "client", kTcp, 81, D::kDenied},
    {kAllowClientOn80, "web", kIn, "client", kUdp, 80, D::kDenied},
    {kAllowClientOn80, "web", kIn, "other", kTcp, 80, D::kDenied},
    {kAllowClientOn80, "web", kIn, "foreign", kTcp, 80, D::kDenied},  // same labels, other namespace
    {kAllowClientOn80, "web", kIn, "203.0.113.9", kTcp, 80, D::kDenied},
    {kAllowClientOn80, "web", kOut, "client", kTcp, 80, D::kAllowed},  // egress not selected
    {kAllowClientOn80, "client", kIn, "web", kTcp, 80, D::kAllowed},   // client not selected
    {kAllowClientAllPorts, "web", kIn, "client", kTcp, 9999, D::kAllowed},
    {kAllowClientAllPorts, "web", kIn, "client", kUdp, 53, D::kAllowed},
    {kAllowClientAllPorts, "web", kIn, "client", kIcmp, 0, D::kAllowed},
    {kAllowClientOn80, "web", kIn, "client", kIcmp, 0, D::kDenied},
    {kAllowDns, "web", kIn, "other", kUdp, 53, D::kAllowed},
    {kAllowDns, "web", kIn, "203.0.113.9", kUdp, 53, D::kAllowed},
    {kAllowDns, "web", kIn, "other", kTcp, 53, D::kDenied},
    {kAllowDns, "web", kIn, "other", kUdp, 54, D::kDenied},
    // Port ranges: both ends and either side of them.
    {kPortRange, "web", kIn, "client", kTcp, 8000, D::kAllowed},
    {kPortRange, "web", kIn, "client", kTcp, 8040, D::kAllowed},
    {kPortRange, "web", kIn, "client", kTcp, 8080, D::kAllowed},
    {kPortRange, "web", kIn, "client", kTcp, 7999, D::kDenied},
    {kPortRange, "web", kIn, "client", kTcp, 8081, D::kDenied},
    {kPortRange, "web", kIn, "other", kTcp, 8040, D::kDenied},
    // CIDR + except, from outside and to pods by address.
    {kCidrExcept, "web", kIn, "203.0.113.9", kTcp, 80, D::kAllowed},
    {kCidrExcept, "web", kIn, "203.0.113.127", kTcp, 80, D::kAllowed},
    {kCidrExcept, "web", kIn, "203.0.113.128", kTcp, 80, D::kDenied},
    {kCidrExcept, "web", kIn, "203.0.113.200", kTcp, 80, D::kDenied},
    {kCidrExcept, "web", kIn, "198.51.100.7", kTcp, 80, D::kDenied},
    {kCidrExcept, "web", kIn, "203.0.113.9", kTcp, 81, D::kDenied},
    {kEgressCidrToPods, "client", kOut, "web", kTcp, 80, D::kAllowed},
    {kEgressCidrToPods, "client", kOut, "web", kUdp, 5353, D::kAllowed},
    {kEgressCidrToPods, "client", kOut, "other", kTcp, 80, D::kDenied},
    {kEgressCidrToPods, "client", kOut, "foreign", kTcp, 80, D::kDenied},
    {kEgressCidrToPods, "client", kOut, NODE_IP, kTcp, 80, D::kDenied},
    // Deny rules win over allows, for that peer and port only.
    {kDenyOther, "web", kIn, "other", kTcp, 80, D::kDeny},
    {kDenyOther, "web", kIn, "other", kTcp, 443, D::kAllowed},
    {kDenyOther, "web", kIn, "client", kTcp, 80, D::kAllowed},
    {kDenyOther, "web", kIn, "203.0.113.9", kTcp, 80, D::kAllowed},
    {kDenyWorldCidr, "web", kIn, "198.51.100.7", kTcp, 80, D::kDeny},
    {kDenyWorldCidr, "web", kIn, "198.51.100.7", kUdp, 53, D::kDeny},
    {kDenyWorldCidr, "web", kIn, "203.0.113.9", kTcp, 80, D::kAllowed},
    {kDenyWorldCidr, "web", kIn, "client", kTcp, 80, D::kDenied},
    {kDenyAnyBeatsExactAllow, "web", kIn, "client", kTcp, 80, D::kDeny},
    {kDenyAnyBeatsExactAllow, "web", kIn, "client", kTcp, 81, D::kAllowed},
    {kDenyAnyBeatsExactAllow, "web", kIn, "other", kTcp, 80, D::kDeny},
    {kEgressDeny, "client", kOut, "web", kTcp, 443, D::kDeny},
    {kEgressDeny, "client", kOut, "web", kTcp, 80, D::kAllowed},
    {kEgressDeny, "client", kOut, "other", kTcp, 443, D::kAllowed},
    {kEgressDeny, "client", kOut, NODE_IP, kTcp, 443, D::kAllowed},
    // Default deny with no rule at all, both directions.
    {kDefaultDenyBoth, "web", kIn, "client", kTcp, 80, D::kDenied},
    {kDefaultDenyBoth, "web", kIn, "203.0.113.9", kUdp, 53, D::kDenied},
    {kDefaultDenyBoth, "web", kOut, "client", kTcp, 80, D::kDenied},
    {kDefaultDenyBoth, "web", kOut, NODE_IP, kIcmp, 0, D::kDenied},
    {kDefaultDenyBoth, "client", kOut, "web", kTcp, 80, D::kAllowed},
    // Entities and namespaces.
    {kEgressToHost, "client", kOut, NODE_IP, kTcp, 80, D::kAllowed},
    {kEgressToHost, "client", kOut, NODE_IP, kTcp, 22, D::kDenied},
    {kEgressToHost, "client", kOut, "web", kTcp, 80, D::kDenied},
    {kOtherNamespaceOnly, "web", kIn, "foreign", kTcp, 80, D::kAllowed},
    {kOtherNamespaceOnly, "web", kIn, "client", kTcp, 80, D::kDenied},
    // Named ports: the selected pod's own (ingress), the destination pod's (egress).
    {kIngressNamedPort, "web", kIn, "client", kTcp, 8080, D::kAllowed},
    {kIngressNamedPort, "web", kIn, "client", kTcp, 80, D::kDenied},
    {kIngressNamedPort, "web", kIn, "other", kTcp, 8080, D::kDenied},
    {kEgressNamedPort, "client", kOut, "web", kTcp, 8080, D::kAllowed},
    {kEgressNamedPort, "client", kOut, "web", kTcp, 80, D::kDenied},
    {kEgressNamedPort, "client", kOut, "other", kTcp, 8080, D::kDenied},
    // L7: redirected to the proxy, unless an L4 allow of the same port lets everything through.
    {kIngressL7, "web", kIn, "client", kTcp, 80, D::kProxied},
    {kIngressL7, "web", kIn, "client", kTcp, 81, D::kDenied},
    {kIngressL7, "web", kIn, "other", kTcp, 80, D::kDenied},
    {kIngressL7AndL4, "web", kIn, "client", kTcp, 80, D::kAllowed},
    {kIngressL7DeniedForAll, "web", kIn, "client", kTcp, 80, D::kDeny},
    {kEgressL7, "client", kOut, "web", kTcp, 80, D::kProxied},
    {kEgressL7, "client", kOut, "web", kTcp, 81, D::kDenied},
    {kEgressL7, "client", kOut, "other", kTcp, 80, D::kDenied},
};
// clang-format on

// --------------------------------------------------------------- the two sides

struct LocalPod {
  const PodSpec* spec;
  uint16_t endpoint_id;
  uint32_t identity;
  Pod seeded;
};

class PolicyParityTest : public DatapathTest {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    uint16_t next_endpoint = 71;
    uint32_t next_identity = IDENTITY_FIRST_POD + 100;
    std::map<identity::LabelSet, uint32_t> identities;
    identities_.push_back({IDENTITY_HOST, identity::LabelSet{{"reserved", "host", ""}}});
    identities_.push_back({IDENTITY_WORLD, identity::LabelSet{{"reserved", "world", ""}}});
    identities_.push_back({IDENTITY_REMOTE_NODE, identity::LabelSet{{"reserved", "remote-node", ""}}});
    for (const PodSpec& p : kPods) {
      identity::LabelSet labels = identity::pod_labels(p.labels, p.ns, {});
      auto [it, added] = identities.try_emplace(labels, next_identity);
      if (added) identities_.push_back({next_identity++, labels});
      LocalPod pod{&p, next_endpoint++, it->second, {}};
      pod.seeded = add_local_pod(p.ip, PARKED_IFINDEX - pod.endpoint_id, pod.identity, pod.endpoint_id);
      pods_.emplace(p.name, pod);
      labels_.emplace(p.name, labels);
    }
    add_host_address(NODE_IP);
    datapath().proxy_config().update(0, proxy_config{ipv4_address(NODE_IP), 0});
  }

  // The agent's policy_input() + regenerate_policy() over this node: rules, default deny,
  // endpoints with their labels and ports, pod and reserved identities, a CIDR identity per
  // prefix the rules name, the proxy's port, stable references. Then the maps, as the agent
  // writes them.
  void load(const char* yaml) {
    policy::ResolverInput in;
    if (yaml[0]) {
      for (const manifest::Document& doc : manifest::parse_documents({"parity.yaml", yaml})) {
        policy::ConvertedPolicy c = policy::convert_policy(manifest::parse_object(doc));
        if (c.rules.empty() && c.default_deny.empty()) fail("not a policy: {}", doc.describe());
        in.rules.insert(in.rules.end(), c.rules.begin(), c.rules.end());
        in.default_deny.insert(in.default_deny.end(), c.default_deny.begin(), c.default_deny.end());
      }
    }
    for (const PodSpec& p : kPods) {
      const LocalPod& pod = pods_.at(p.name);
      policy::EndpointView v;
      v.id = pod.endpoint_id;
      v.identity = pod.identity;
      v.labels = labels_.at(p.name);
      v.ip = endpoint::parse_ipv4(p.ip);
      v.ports = p.ports;
      in.endpoints.push_back(std::move(v));
    }
    in.identities = identities_;
    in.host_ips = {endpoint::parse_ipv4(NODE_IP)};
    uint32_t next_cidr = IDENTITY_FIRST_LOCAL + 1;
    for (const auto& prefix : policy::cidr_prefixes(in.rules)) in.cidr_identities[prefix] = next_cidr++;
    cidr_identities_ = in.cidr_identities;
    in.proxy_port = PROXY_PORT;
    in.refs = &refs_;
    resolved_ = policy::resolve(in);

    // The maps: nothing of the previous row may remain.
    auto policy_map = datapath().policy();
    for (const policy_key& k : policy_map.keys()) policy_map.erase(k);
    auto cidrs = datapath().policy_cidrs();
    for (const ipcache_key& k : cidrs.keys()) cidrs.erase(k);
    auto ct = datapath().conntrack();
    for (const ct_key& k : ct.keys()) ct.erase(k);
    auto flows = datapath().proxy_flows();
    for (const proxy_flow_key& k : flows.keys()) flows.erase(k);
    for (const auto& [prefix, id] : cidr_identities_)
      cidrs.update(ipcache_key{static_cast<uint32_t>(prefix.length), prefix.network().network_order()},
                   ipcache_value{id, 0});
    datapath().policy_cidrs_count().update(0, static_cast<uint32_t>(cidr_identities_.size()));
    for (const auto& [k, e] : resolved_.entries) policy_map.update(k, e.value);
    drain_events();
  }

  // The pod the run arrives from (from_pod) or at (to_pod) sits on loopback, the others are parked.
  void place(const LocalPod& on_loopback) {
    auto endpoints = datapath().endpoints();
    for (const auto& [name, pod] : pods_) {
      endpoint_key key{ipv4_address(pod.spec->ip)};
      std::optional<endpoint_info> info = endpoints.lookup(key);
      if (!info) fail("pod {} is not in the endpoints map", name);
      info->ifindex = &pod == &on_loopback ? LOOPBACK_IFINDEX : static_cast<uint32_t>(PARKED_IFINDEX - pod.endpoint_id);
      auto it = resolved_.endpoints.find(pod.endpoint_id);
      info->flags = it == resolved_.endpoints.end() ? 0 : it->second.flags;
      endpoints.update(key, *info);
    }
  }

  const LocalPod* pod_named(const std::string& name) const {
    auto it = pods_.find(name);
    return it == pods_.end() ? nullptr : &it->second;
  }
  std::string ip_of(const Row& r) const {
    const LocalPod* p = pod_named(r.peer);
    return p ? p->spec->ip : r.peer;
  }

  // `policy trace`'s view of the peer: its identity (a pod's, the node's, else world, as the
  // ipcache holds no policy CIDR), and the longest policy CIDR holding its address.
  Outcome cpp_side(const Row& r) const {
    const LocalPod& subject = pods_.at(r.subject);
    const LocalPod* peer_pod = pod_named(r.peer);
    std::string peer_ip = ip_of(r);
    uint32_t peer_identity = peer_pod ? peer_pod->identity : peer_ip == NODE_IP ? IDENTITY_HOST : IDENTITY_WORLD;
    endpoint::Ipv4 addr = endpoint::parse_ipv4(peer_ip);
    uint32_t cidr = 0;
    int best = -1;
    for (const auto& [prefix, id] : cidr_identities_)
      if (prefix.contains(addr) && prefix.length > best) best = prefix.length, cidr = id;
    uint16_t peer_endpoint = r.dir == kOut && peer_pod ? peer_pod->endpoint_id : 0;
    policy::Verdict v = policy::evaluate(resolved_, subject.endpoint_id, r.dir, peer_identity, r.proto, r.port, cidr,
                                         peer_endpoint);
    if (!v.allowed) {
      uint32_t ref = v.entry ? v.entry->value.rule_id : default_deny_ref(subject.endpoint_id, r.dir);
      return {v.drop_reason == DROP_POLICY_DENY ? Decision::kDeny : Decision::kDenied, ref};
    }
    // The proxy takes a TCP connection when one of the entries the lookups find carries its port.
    if (r.proto == kTcp)
      for (const policy::ResolvedEntry* e : policy::matching_entries(resolved_, subject.endpoint_id, r.dir,
                                                                     peer_identity, r.proto, r.port, cidr, peer_endpoint))
        if (e->value.proxy_port) return {Decision::kProxied, 0};
    return {Decision::kAllowed, v.entry ? v.entry->value.rule_id : 0};
  }

  uint32_t default_deny_ref(uint16_t endpoint_id, uint8_t dir) const {
    policy_key k{};
    k.prefixlen = POLICY_PREFIX_ANY_PROTO;
    k.endpoint_id = endpoint_id;
    k.direction = dir;
    k.peer_kind = POLICY_PEER_DEFAULT_DENY;
    auto it = resolved_.entries.find(k);
    return it == resolved_.entries.end() ? 0 : it->second.value.rule_id;
  }

  // The datapath's: the first packet of a connection through the real programs. Egress: from_pod
  // on the subject's veth. Ingress from a pod: from_pod on the peer's veth, which runs the
  // subject's ingress stage (the peer's egress must let it out). Ingress from outside: to_pod on
  // the subject's veth. The subject's stage is read from the events: a drop, or a policy verdict
  // naming the entry, in its name and direction.
  Outcome bpf_side(const Row& r, uint16_t sport) {
    const LocalPod& subject = pods_.at(r.subject);
    const LocalPod* peer_pod = pod_named(r.peer);
    std::string peer_ip = ip_of(r);
    auto l4 = [&](PacketBuilder b) {
      if (r.proto == kTcp) b.tcp(sport, r.port, SYN);
      else if (r.proto == kUdp) b.udp(sport, r.port);
      else b.icmp_echo(8, sport, 1);
      return b.build();
    };
    RunResult run;
    if (r.dir == kOut) {
      if (!peer_pod && peer_ip != NODE_IP) fail("row error: egress rows need a pod or the node as peer (else NO_ROUTE)");
      place(subject);
      run = run_from_pod(l4(subject.seeded.send_to(peer_ip)), LOOPBACK_IFINDEX);
    } else if (peer_pod) {
      place(*peer_pod);
      run = run_from_pod(l4(peer_pod->seeded.send_to(subject.spec->ip)), LOOPBACK_IFINDEX);
    } else {
      if (peer_ip == NODE_IP) fail("row error: the node always reaches its pods (allow-localhost)");
      place(subject);
      run = run_to_pod(l4(subject.seeded.receive_from(peer_ip)), LOOPBACK_IFINDEX);
    }
    std::vector<flow_event> events = drain_events();
    bool dropped_later = false;  // egress: by the peer's ingress stage, after the subject's allowed it
    for (const flow_event& e : events) {
      if (e.type != EVENT_DROP) continue;
      if (e.endpoint_id == subject.endpoint_id && e.dir == r.dir) {
        EXPECT_EQ(run.verdict, uint32_t(TC_ACT_SHOT));
        if (e.reason == DROP_POLICY_DENY) return {Decision::kDeny, e.policy_ref};
        if (e.reason == DROP_POLICY_DENIED) return {Decision::kDenied, e.policy_ref};
        fail("dropped for reason {}, not by policy: {}", e.reason, test::describe(e));
      }
      if (r.dir == kIn) fail("row error: dropped before the subject's ingress stage: {}", test::describe(e));
      dropped_later = true;
    }
    if (!dropped_later) EXPECT_NE(run.verdict, uint32_t(TC_ACT_SHOT)) << "dropped without a drop event";
    // DNATed to the proxy: the frame leaves with the node's address and the proxy's port.
    uint32_t node_be = ipv4_address(NODE_IP);
    bool to_proxy = r.proto == kTcp && run.output.size() >= 38 &&
                    std::memcmp(&run.output[14 + 16], &node_be, 4) == 0 &&
                    ((run.output[36] << 8) | run.output[37]) == PROXY_PORT;
    if (to_proxy) return {Decision::kProxied, 0};
    for (const flow_event& e : events)
      if (e.type == EVENT_POLICY_VERDICT && e.endpoint_id == subject.endpoint_id && e.dir == r.dir)
        return {Decision::kAllowed, e.policy_ref};
    return {Decision::kAllowed, 0};  // allowed by default: no verdict event
  }

  std::map<std::string, LocalPod> pods_;
  std::map<std::string, identity::LabelSet> labels_;
  std::vector<policy::IdentityView> identities_;
  std::map<endpoint::Ipv4Prefix, uint32_t> cidr_identities_;
  policy::PolicyRefTable refs_;
  policy::ResolvedPolicy resolved_;
};

TEST_F(PolicyParityTest, TraceAndDatapathAgreeOnEveryRow) {
  ASSERT_GE(kTable.size(), 50u);
  size_t agreed = 0;
  std::map<Decision, size_t> seen;
  uint16_t sport = 30000;
  for (size_t i = 0; i < kTable.size(); i++) {
    const Row& row = kTable[i];
    SCOPED_TRACE(fmt::format("row {}: {}", i, describe(row)));
    load(row.policy);
    Outcome cpp = cpp_side(row);
    Outcome bpf = bpf_side(row, sport++);
    EXPECT_EQ(to_string(cpp), to_string(bpf)) << "policy trace and the datapath disagree";
    EXPECT_EQ(name_of(cpp.decision), std::string(name_of(row.expect))) << "not the verdict the row means";
    if (cpp == bpf && cpp.decision == row.expect) agreed++;
    seen[bpf.decision]++;
  }
  EXPECT_EQ(agreed, kTable.size());
  // Every kind of decision is exercised, and references are compared for real.
  for (Decision d : {D::kAllowed, D::kProxied, D::kDeny, D::kDenied}) EXPECT_GT(seen[d], 0u) << name_of(d);
}

}  // namespace
}  // namespace pilus::test
