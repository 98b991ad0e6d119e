// Policy e2e on a live node: changes cut streams, new pods covered at once, drop counters, trace, bpf policy get, bad input.
#include <thread>

#include <gmock/gmock.h>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using PolicyLive = PolicyTest;
using PolicyTools = PolicyTest;
using PolicyInput = PolicyTest;

std::string in_ns(const std::string& text, const std::string& ns) { return fill(text, {{"$NS", ns}}); }

// Waits until conntrack holds the flow from `from` to `to`:port, so a policy applied next
// meets an established connection.
void wait_for_flow(TestAgent& agent, const Peer& from, const Peer& to, int port) {
  const std::string destination = to.ip + ":" + std::to_string(port);
  if (wait_until([&] {
        for (const auto& flow : agent.bpf_conntrack())
          if (flow.value("destination", "") == destination && flow.value("source", "").starts_with(from.ip + ":"))
            return true;
        return false;
      }))
    return;
  throw HarnessError("no conntrack entry for " + from.ip + " -> " + destination + ": " + agent.bpf_conntrack().dump());
}

// ---------------------------------------------------------------- live traffic

constexpr int kStreamMs = 6000;

// A policy replaced by another that also allows the stream, again and again while it runs:
// new entries are written before stale ones go, so not one segment is lost or retransmitted.
// Rules that change shape (L3-only, L4, a CIDR) move the stream between entries of every kind.
TEST_F(PolicyLive, ReplacingAPolicyThatStillAllowsAStreamDropsNothing) {
  create({server_in(ns(), "client"), server_in(ns(), "server"), server_in(ns(), "stranger")});
  Peer client = at(ns(), "client"), server = at(ns(), "server"), stranger = at(ns(), "stranger");
  const std::string head = R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-in
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingress:
)yaml";
  const std::vector<std::string> versions = {
      "  - fromEndpoints:\n    - matchLabels:\n        app: client\n",
      "  - fromEndpoints:\n    - matchLabels:\n        app: client\n    toPorts:\n    - ports:\n      - port: \"80\"\n"
      "        protocol: TCP\n",
      "  - fromCIDR:\n    - " + client.ip + "/32\n",
      "  - fromEndpoints:\n    - matchLabels:\n        app: client\n    toPorts:\n    - ports:\n      - port: \"1\"\n"
      "        endPort: 1024\n        protocol: TCP\n",
  };
  apply_ok(in_ns(head + versions[0], ns()));
  Stream stream(client, server, kTcpPort, kStreamMs);
  wait_for_flow(agent(), client, server, kTcpPort);
  for (int round = 0; round < 3; round++)
    for (size_t v = 1; v <= versions.size(); v++) apply_ok(in_ns(head + versions[v % versions.size()], ns()));
  nlohmann::json result = stream.result();
  EXPECT_EQ(result["errors"], 0) << result;
  EXPECT_GT(result["sent"].get<int>(), 0) << result;
  EXPECT_EQ(result["received"], result["sent"]) << result;
  EXPECT_EQ(result["retransmits"], 0) << "no segment was dropped while the policy changed: " << result;
  EXPECT_EQ(drops(ns(), "server", "POLICY_DENIED") + drops(ns(), "server", "POLICY_DENY"), 0u);
  // The policy in force still holds: the stranger is refused by the last version.
  Matrix m;
  m.allow(client, server, kTcpPort, "tcp").deny(stranger, server, kTcpPort, "tcp");
  verify(m);
}

TEST_F(PolicyLive, AnAppliedDenyCutsAnEstablishedStreamAndNotAnUnrelatedOne) {
  create({server_in(ns(), "a"), server_in(ns(), "b"), server_in(ns(), "c"), server_in(ns(), "d")});
  Peer a = at(ns(), "a"), b = at(ns(), "b"), c = at(ns(), "c"), d = at(ns(), "d");
  Stream cut(a, b, kTcpPort, kStreamMs), unrelated(c, d, kTcpPort, kStreamMs);
  wait_for_flow(agent(), a, b, kTcpPort);
  wait_for_flow(agent(), c, d, kTcpPort);

  apply_ok(in_ns(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: deny-a
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: b
  ingress:
  - fromEntities:
    - all
  ingressDeny:
  - fromEndpoints:
    - matchLabels:
        app: a
)yaml", ns()));
  nlohmann::json cut_result = cut.result(), unrelated_result = unrelated.result();
  EXPECT_GE(cut_result["received"].get<int>(), 1) << "the stream worked before the policy: " << cut_result;
  EXPECT_GE(cut_result["errors"].get<int>(), 1) << "the deny must cut a -> b: " << cut_result;
  EXPECT_EQ(unrelated_result["errors"], 0) << unrelated_result;
  EXPECT_EQ(unrelated_result["received"], unrelated_result["sent"]) << unrelated_result;
  EXPECT_GE(drops(ns(), "b", "POLICY_DENY", "ingress"), 1u);

  Matrix after;
  after.deny(a, b, kTcpPort, "tcp").allow(c, d, kTcpPort, "tcp").allow(c, b, kTcpPort, "tcp");
  verify(after);
}

TEST_F(PolicyLive, RemovingTheOnlyAllowCutsAnEstablishedStreamAndNotAnUnrelatedOne) {
  create({server_in(ns(), "a"), server_in(ns(), "b"), server_in(ns(), "c"), server_in(ns(), "d")});
  Peer a = at(ns(), "a"), b = at(ns(), "b"), c = at(ns(), "c"), d = at(ns(), "d");
  const std::string lock = in_ns(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: lock-b
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: b
  ingress: []
)yaml", ns());
  const std::string allow = in_ns(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-a-to-b
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: b
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: a
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
)yaml", ns());
  apply_ok(lock + "---\n" + allow);
  Matrix before;
  before.allow(a, b, kTcpPort, "tcp").deny(c, b, kTcpPort, "tcp").allow(c, d, kTcpPort, "tcp");
  verify(before);

  Stream cut(a, b, kTcpPort, kStreamMs), unrelated(c, d, kTcpPort, kStreamMs);
  wait_for_flow(agent(), a, b, kTcpPort);
  wait_for_flow(agent(), c, d, kTcpPort);
  delete_ok(allow);
  nlohmann::json cut_result = cut.result(), unrelated_result = unrelated.result();
  EXPECT_GE(cut_result["received"].get<int>(), 1) << cut_result;
  EXPECT_GE(cut_result["errors"].get<int>(), 1) << "removing the allow must cut a -> b: " << cut_result;
  EXPECT_EQ(unrelated_result["errors"], 0) << unrelated_result;
  EXPECT_EQ(unrelated_result["received"], unrelated_result["sent"]) << unrelated_result;
  EXPECT_GE(drops(ns(), "b", "POLICY_DENIED", "ingress"), 1u);

  std::vector<std::string> names;
  for (const auto& p : policies()) names.push_back(p["name"]);
  EXPECT_THAT(names, ::testing::ElementsAre("lock-b"));
  Matrix after;
  after.deny(a, b, kTcpPort, "tcp").allow(c, d, kTcpPort, "tcp");
  verify(after);
}

TEST_F(PolicyLive, PodsAddedAfterThePolicyAreCoveredAtOnce) {
  apply_ok(in_ns(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: locked-from-friends
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: locked
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: friend
)yaml", ns()));
  create({server_in(ns(), "friend"), server_in(ns(), "stranger")});
  // A subject created after the policy: no wait beyond its servers listening.
  create({server_in(ns(), "locked-1", {{"app", "locked"}})});
  Peer locked = at(ns(), "locked-1"), friend_ = at(ns(), "friend"), stranger = at(ns(), "stranger");
  Matrix m;
  m.allow(friend_, locked, kTcpPort, "tcp").allow(friend_, locked, kUdpPort, "udp");
  m.deny(stranger, locked, kTcpPort, "tcp").deny(stranger, locked, kUdpPort, "udp");
  m.allow(locked, stranger, kTcpPort, "tcp");
  verify(m);
  EXPECT_EQ(bpf_policy(ns() + "/locked-1")["defaultDeny"]["ingress"], true);

  // A peer created after the policy is allowed at once too.
  create({server_in(ns(), "friend-2", {{"app", "friend"}}), server_in(ns(), "stranger-2", {{"app", "stranger"}})});
  Matrix peers;
  peers.allow(at(ns(), "friend-2"), locked, kTcpPort, "tcp").deny(at(ns(), "stranger-2"), locked, kTcpPort, "tcp");
  verify(peers);
}

// ---------------------------------------------------------------- counters, trace, bpf policy get

TEST_F(PolicyTools, DropsAreCountedOnTheDroppingEndpointWithTheirReason) {
  create({server_in(ns(), "quiet"), server_in(ns(), "denier"), server_in(ns(), "client"), server_in(ns(), "mute")});
  apply_ok(in_ns(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: quiet
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: quiet
  ingress: []
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: denier
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: denier
  ingress:
  - fromEntities:
    - all
  ingressDeny:
  - fromEndpoints:
    - matchLabels:
        app: client
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: mute
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: mute
  egress: []
)yaml", ns()));
  Peer quiet = at(ns(), "quiet"), denier = at(ns(), "denier"), client = at(ns(), "client"), mute = at(ns(), "mute");
  Matrix m;
  m.deny(client, quiet, kTcpPort, "tcp").deny(client, quiet, kUdpPort, "udp");
  m.deny(client, denier, kTcpPort, "tcp").deny(client, denier, kUdpPort, "udp");
  m.deny(mute, client, kUdpPort, "udp").deny(mute, client, kTcpPort, "tcp");
  m.allow(quiet, denier, kTcpPort, "tcp");
  verify(m);

  EXPECT_GE(drops(ns(), "quiet", "POLICY_DENIED", "ingress"), 2u);
  EXPECT_EQ(drops(ns(), "quiet", "POLICY_DENY"), 0u);
  EXPECT_GE(drops(ns(), "denier", "POLICY_DENY", "ingress"), 2u);
  EXPECT_EQ(drops(ns(), "denier", "POLICY_DENIED"), 0u);
  EXPECT_GE(drops(ns(), "mute", "POLICY_DENIED", "egress"), 2u);
  EXPECT_EQ(drops(ns(), "mute", "POLICY_DENIED", "ingress"), 0u);
  // The client sent every dropped packet, but none was dropped at its own endpoint.
  EXPECT_EQ(drops(ns(), "client", "POLICY_DENIED") + drops(ns(), "client", "POLICY_DENY"), 0u)
      << agent().bpf_endpoints().dump();
}

const std::string kBackendPolicies = R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-frontend
  namespace: $NS
spec:
  podSelector:
    matchLabels:
      app: backend
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: frontend
    ports:
    - protocol: TCP
      port: 80
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: no-intruder
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: backend
  ingressDeny:
  - fromEndpoints:
    - matchLabels:
        app: intruder
)yaml";

TEST_F(PolicyTools, TraceAgreesWithTrafficAndNamesThePolicy) {
  create({server_in(ns(), "backend"), server_in(ns(), "frontend"), server_in(ns(), "intruder"), server_in(ns(), "other")});
  apply_ok(in_ns(kBackendPolicies, ns()));
  Peer backend = at(ns(), "backend"), frontend = at(ns(), "frontend"), intruder = at(ns(), "intruder");
  Peer other = at(ns(), "other");
  Matrix m;
  m.allow(frontend, backend, kTcpPort, "tcp").deny(other, backend, kTcpPort, "tcp");
  m.deny(intruder, backend, kTcpPort, "tcp").deny(frontend, backend, kUdpPort, "udp");
  verify(m);

  const std::string b = ns() + "/backend";
  nlohmann::json allowed = trace(ns() + "/frontend", b, "80/tcp");
  EXPECT_EQ(allowed["verdict"], "ALLOWED") << allowed.dump(2);
  EXPECT_EQ(trace_step(allowed, "ingress")["verdict"], "ALLOWED") << allowed.dump(2);
  EXPECT_THAT(trace_step(allowed, "ingress").value("decidedBy", ""),
              HasSubstr("NetworkPolicy " + ns() + "/web-from-frontend spec.ingress[0]"))
      << allowed.dump(2);
  EXPECT_EQ(trace_step(allowed, "egress")["verdict"], "ALLOWED") << allowed.dump(2);

  nlohmann::json by_ip = trace(ns() + "/frontend", backend.ip, "80/tcp");
  EXPECT_EQ(by_ip["verdict"], "ALLOWED") << "the same pair named by address: " << by_ip.dump(2);

  nlohmann::json denied = trace(ns() + "/other", b, "80/tcp");
  EXPECT_EQ(denied["verdict"], "DENIED") << denied.dump(2);
  EXPECT_EQ(trace_step(denied, "ingress").value("reason", ""), "POLICY_DENIED") << denied.dump(2);
  EXPECT_THAT(trace_step(denied, "ingress").value("decidedBy", ""), HasSubstr("default deny")) << denied.dump(2);
  EXPECT_THAT(trace_step(denied, "ingress").value("decidedBy", ""), HasSubstr(ns() + "/")) << "names a policy: " << denied.dump(2);

  nlohmann::json deny_rule = trace(ns() + "/intruder", b, "80/tcp");
  EXPECT_EQ(deny_rule["verdict"], "DENIED") << deny_rule.dump(2);
  EXPECT_EQ(trace_step(deny_rule, "ingress").value("reason", ""), "POLICY_DENY") << deny_rule.dump(2);
  EXPECT_THAT(trace_step(deny_rule, "ingress").value("decidedBy", ""),
              HasSubstr("CiliumNetworkPolicy " + ns() + "/no-intruder spec.ingressDeny[0]"))
      << deny_rule.dump(2);

  nlohmann::json udp = trace(ns() + "/frontend", b, "53/udp");
  EXPECT_EQ(udp["verdict"], "DENIED") << udp.dump(2);
}

TEST_F(PolicyTools, BpfPolicyGetListsEntriesWithLabelsAndRules) {
  create({server_in(ns(), "backend"), server_in(ns(), "frontend"), server_in(ns(), "intruder")});
  apply_ok(in_ns(kBackendPolicies, ns()));
  const auto frontend_identity = agent().pod(ns(), "frontend")["status"]["identity"];
  const auto intruder_identity = agent().pod(ns(), "intruder")["status"]["identity"];

  nlohmann::json got = bpf_policy(ns() + "/backend");
  EXPECT_EQ(got["defaultDeny"]["ingress"], true) << got.dump(2);
  EXPECT_EQ(got["defaultDeny"]["egress"], false) << got.dump(2);
  int allow_entries = 0, deny_entries = 0, default_deny_records = 0;
  for (const auto& e : got["items"]) {
    if (e["identity"] == frontend_identity) {
      allow_entries++;
      EXPECT_EQ(e["direction"], "ingress") << e;
      EXPECT_EQ(e["verdict"], "allow") << e;
      EXPECT_EQ(e["port"], "80/TCP") << e;
      EXPECT_THAT(e["labels"].get<std::string>(), HasSubstr("k8s:app=frontend")) << e;
      EXPECT_THAT(e["rule"].get<std::string>(), HasSubstr("web-from-frontend spec.ingress[0]")) << e;
    } else if (e["verdict"] == "default-deny") {
      // Not a verdict: the record naming the policies behind the default deny, for drop events.
      default_deny_records++;
      EXPECT_THAT(e["rule"].get<std::string>(), HasSubstr("web-from-frontend")) << e;
    } else if (e["identity"] == intruder_identity) {
      deny_entries++;
      EXPECT_EQ(e["verdict"], "deny") << e;
      EXPECT_EQ(e["port"], "ANY") << e;
      EXPECT_THAT(e["labels"].get<std::string>(), HasSubstr("k8s:app=intruder")) << e;
      EXPECT_THAT(e["rule"].get<std::string>(), HasSubstr("no-intruder spec.ingressDeny[0]")) << e;
    } else {
      ADD_FAILURE() << "unexpected entry " << e;
    }
  }
  EXPECT_EQ(allow_entries, 1) << got.dump(2);
  EXPECT_EQ(deny_entries, 1) << got.dump(2);
  EXPECT_EQ(default_deny_records, 1) << got.dump(2);

  nlohmann::json unselected = bpf_policy(ns() + "/frontend");
  EXPECT_THAT(unselected["items"], IsEmpty()) << unselected.dump(2);
  EXPECT_EQ(unselected["defaultDeny"]["ingress"], false);
  EXPECT_EQ(unselected["defaultDeny"]["egress"], false);
}

// ---------------------------------------------------------------- bad input

struct BadPolicy {
  std::string description, yaml;
  std::vector<std::string> error_mentions;
};

TEST_F(PolicyInput, BadPoliciesAreRefusedNamingTheFieldAndNothingIsApplied) {
  create({server_in(ns(), "server"), server_in(ns(), "client")});
  apply_ok(in_ns(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: existing
  namespace: $NS
spec:
  podSelector:
    matchLabels:
      app: server
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: client
)yaml", ns()));
  // Each bad policy comes after a good one in the same file: the good one must not be applied either.
  const std::string good = R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: would-lock-client
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: client
  ingress: []
---
)yaml";
  const std::string np_head = R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: bad
  namespace: $NS
spec:
  podSelector:
    matchLabels:
      app: server
  ingress:
)yaml";
  const std::vector<BadPolicy> cases = {
      {"invalid CIDR", np_head + "  - from:\n    - ipBlock:\n        cidr: 10.0.0.300/8\n",
       {"document 2", "spec.ingress[0].from[0].ipBlock.cidr", "10.0.0.300"}},
      {"port 70000", np_head + "  - ports:\n    - port: 70000\n", {"document 2", "spec.ingress[0].ports[0].port", "70000"}},
      {"unknown field",
       "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: bad\n  namespace: $NS\nspec:\n"
       "  endpointSelector:\n    matchLabels:\n      app: server\n  ingress:\n  - fromEndpoint:\n    - matchLabels:\n"
       "        app: client\n",
       {"document 2", "spec.ingress[0].fromEndpoint"}},
  };
  Peer server = at(ns(), "server"), client = at(ns(), "client");
  const nlohmann::json policies_before = policies();
  const nlohmann::json server_map_before = bpf_policy(ns() + "/server");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    const std::string yaml = in_ns(good + c.yaml, ns());
    CommandResult r = agent().try_apply(yaml);
    EXPECT_NE(r.exit_code, 0) << r.describe();
    for (const auto& mention : c.error_mentions) EXPECT_THAT(r.err, HasSubstr(mention)) << "manifest:\n" << yaml;
    EXPECT_EQ(policies(), policies_before) << "nothing may be applied";
    EXPECT_EQ(bpf_policy(ns() + "/server"), server_map_before);
    EXPECT_EQ(bpf_policy(ns() + "/client")["defaultDeny"]["ingress"], false) << "the good document was applied";
  }
  Matrix m;
  // Traffic still follows "existing" alone: the client is not locked.
  m.allow(client, server, kTcpPort, "tcp").allow(server, client, kTcpPort, "tcp").allow(server, client, kUdpPort, "udp");
  verify(m);
}

}  // namespace
}  // namespace pilus::e2e
