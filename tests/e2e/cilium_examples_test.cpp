// Regression suite over the feature families of Cilium's example policies that pilus
// supports, each with real traffic: what it allows, what it denies (every deny with a
// positive control on the same server and the drop counter or drop flow as evidence),
// and the families pilus refuses, each with a clear error. Manifests: tests/e2e/manifests/.
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

using ::testing::HasSubstr;
using CiliumExamples = PolicyTest;

std::string manifest(const std::string& name) {
  std::ifstream in(std::string(PILUS_EXAMPLES_DIR) + "/../tests/e2e/manifests/" + name);
  if (!in) throw HarnessError("cannot read tests/e2e/manifests/" + name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The drop flows `pilus observe` has for a pod, as JSON objects (the "flow" of each line).
std::vector<nlohmann::json> drop_flows(TestAgent& agent, const std::vector<std::string>& filters) {
  std::vector<std::string> args = {"observe", "--all", "-o", "json", "--type", "drop"};
  args.insert(args.end(), filters.begin(), filters.end());
  CommandResult r = agent.pilus(args);
  if (!r.ok()) throw HarnessError(r.describe());
  std::vector<nlohmann::json> out;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("flow")) out.push_back(j["flow"]);
    }
  return out;
}

// Waits (generously: the agent decodes events asynchronously) until a drop flow matches.
nlohmann::json wait_drop_flow(TestAgent& agent, const std::vector<std::string>& filters,
                              const std::function<bool(const nlohmann::json&)>& wanted) {
  std::vector<nlohmann::json> seen;
  nlohmann::json found;
  if (wait_until([&] {
        seen = drop_flows(agent, filters);
        for (const auto& f : seen)
          if (wanted(f)) return found = f, true;
        return false;
      }))
    return found;
  std::string all;
  for (const auto& f : seen) all += f.dump() + "\n";
  ADD_FAILURE() << "no matching drop flow; saw:\n" << all;
  return nlohmann::json::object();
}

PodManifest with_ports(PodManifest p, const std::string& ports_yaml) {
  p.extra_yaml += "    ports:\n" + ports_yaml;
  return p;
}

PodManifest with_service_account(PodManifest p, const std::string& account) {
  p.extra_yaml += "  serviceAccountName: " + account + "\n";
  return p;
}

// ---------------------------------------------------------------- named ports (issue 13, point 8)

// Kubernetes' "should allow egress access on one named port": per destination pod, its port
// named web and nothing else; pods without web get nothing; two pods with one identity that
// name different ports each get their own.
TEST_F(CiliumExamples, EgressNamedPortMeansEachDestinationsOwnPort) {
  create({server_in(ns(), "client"),
          with_ports(server_in(ns(), "web81", {{"app", "server"}}, 81), "    - {name: web, containerPort: 81}\n"),
          with_ports(server_in(ns(), "web80", {{"app", "server"}}), "    - {name: web, containerPort: 80}\n"),
          with_ports(server_in(ns(), "noweb"), "    - {name: http, containerPort: 80}\n")});
  Peer client = at(ns(), "client"), web81 = at(ns(), "web81"), web80 = at(ns(), "web80"), noweb = at(ns(), "noweb");
  apply_ok(fill(manifest("named-port-egress.yaml"), {{"$NS", ns()}}));
  Matrix m;
  m.allow(client, web81, 81, "tcp").deny(client, web81, kTcpPort, "tcp");
  m.allow(client, web80, kTcpPort, "tcp").deny(client, web80, kAltTcpPort, "tcp");
  m.deny(client, noweb, kTcpPort, "tcp").allow(node(), noweb, kTcpPort, "tcp");
  m.deny(client, web81, kUdpPort, "udp");
  verify(m);
  EXPECT_GE(drops(ns(), "client", "POLICY_DENIED", "egress"), 4u);
  // The trace agrees with the datapath, per destination.
  EXPECT_EQ(trace(ns() + "/client", ns() + "/web81", "81/tcp")["verdict"], "ALLOWED");
  EXPECT_EQ(trace(ns() + "/client", ns() + "/web81", "80/tcp")["verdict"], "DENIED");
  EXPECT_EQ(trace(ns() + "/client", ns() + "/web80", "80/tcp")["verdict"], "ALLOWED");
}

// ---------------------------------------------------------------- empty sections + drop causes (points 1, 5)

TEST_F(CiliumExamples, EmptyEgressSectionLocksThePodAndItsDropsNameThePolicy) {
  create({server_in(ns(), "server"), server_in(ns(), "jail", {{"app", "jail"}, {"role", "restricted"}}),
          server_in(ns(), "free")});
  Peer server = at(ns(), "server"), jail = at(ns(), "jail"), free = at(ns(), "free");
  apply_ok(fill(manifest("deny-all-egress.yaml"), {{"$NS", ns()}}));
  Matrix m;
  m.deny(jail, server, kTcpPort, "tcp").deny(jail, server, kUdpPort, "udp").allow(free, server, kTcpPort, "tcp");
  m.allow(free, jail, kTcpPort, "tcp");  // ingress is untouched
  verify(m);
  EXPECT_GE(drops(ns(), "jail", "POLICY_DENIED", "egress"), 1u);

  auto items = policies();
  ASSERT_EQ(items.size(), 1u) << items;
  EXPECT_EQ(items[0]["endpoints"], 1) << "selects the one restricted pod: " << items[0];

  // The drop names the policy that put the pod in default deny.
  nlohmann::json f = wait_drop_flow(agent(), {"--from-pod", ns() + "/jail"}, [](const nlohmann::json& f) {
    return f.value("drop_reason_desc", "") == "POLICY_DENIED" && f.contains("egress_denied_by");
  });
  ASSERT_TRUE(f.contains("egress_denied_by")) << f;
  EXPECT_EQ(f["egress_denied_by"][0]["name"], "lock-egress") << f;
  EXPECT_EQ(f["egress_denied_by"][0]["namespace"], ns()) << f;
  EXPECT_EQ(f["egress_denied_by"][0]["kind"], "CiliumNetworkPolicy") << f;
  CommandResult compact = agent().pilus({"observe", "--all", "--type", "drop", "--from-pod", ns() + "/jail"});
  ASSERT_TRUE(compact.ok()) << compact.describe();
  EXPECT_THAT(compact.out, HasSubstr("Policy denied by default (CiliumNetworkPolicy " + ns() + "/lock-egress)"));
  // observe --policy finds exactly these.
  EXPECT_FALSE(drop_flows(agent(), {"--policy", ns() + "/lock-egress"}).empty());
  EXPECT_TRUE(drop_flows(agent(), {"--policy", ns() + "/no-such-policy"}).empty());
}

// ---------------------------------------------------------------- the families

TEST_F(CiliumExamples, LabelsAndNamespaces) {
  const std::string ops = ns() + "-ops";
  create_namespace(ops, {{"team", "ops"}});
  create({server_in(ns(), "api", {{"tier", "api"}}), server_in(ns(), "front", {{"tier", "front"}}),
          server_in(ns(), "back", {{"tier", "back"}}), server_in(ops, "tool", {{"tier", "back"}})});
  Peer api = at(ns(), "api"), front = at(ns(), "front"), back = at(ns(), "back"), tool = at(ops, "tool");
  apply_ok(fill(manifest("labels-and-namespaces.yaml"), {{"$NS", ns()}}));
  Matrix m;
  m.allow(front, api, kTcpPort, "tcp").deny(front, api, kAltTcpPort, "tcp").deny(back, api, kTcpPort, "tcp");
  m.allow(tool, api, kTcpPort, "tcp").allow(tool, api, kAltTcpPort, "tcp");
  verify(m);
  EXPECT_GE(drops(ns(), "api", "POLICY_DENIED", "ingress"), 2u);
}

TEST_F(CiliumExamples, Entities) {
  create({server_in(ns(), "guarded"), server_in(ns(), "neighbour")});
  Peer guarded = at(ns(), "guarded"), neighbour = at(ns(), "neighbour");
  apply_ok(fill(manifest("entities.yaml"), {{"$NS", ns()}}));
  Matrix m;
  m.allow(node(), guarded, kTcpPort, "tcp").deny(neighbour, guarded, kTcpPort, "tcp");
  m.allow(guarded, neighbour, kTcpPort, "tcp");
  verify(m);
  EXPECT_GE(drops(ns(), "guarded", "POLICY_DENIED", "ingress"), 1u);
}

TEST_F(CiliumExamples, CidrWithExcept) {
  create({server_in(ns(), "caller"), server_in(ns(), "inside"), server_in(ns(), "excepted")});
  Peer caller = at(ns(), "caller"), inside = at(ns(), "inside"), excepted = at(ns(), "excepted");
  apply_ok(fill(manifest("cidr-except.yaml"), {{"$NS", ns()}, {"$CIDR", agent().pod_cidr()}, {"$EXCEPT", excepted.ip}}));
  Matrix m;
  m.allow(caller, inside, kTcpPort, "tcp").deny(caller, excepted, kTcpPort, "tcp");
  m.allow(inside, excepted, kTcpPort, "tcp");  // the except is the caller's egress only
  verify(m);
  EXPECT_GE(drops(ns(), "caller", "POLICY_DENIED", "egress"), 1u);
}

TEST_F(CiliumExamples, L4PortRanges) {
  create({server_in(ns(), "ranged", {}, 81), server_in(ns(), "client")});
  Peer ranged = at(ns(), "ranged"), client = at(ns(), "client");
  apply_ok(fill(manifest("l4-ranges.yaml"), {{"$NS", ns()}}));
  Matrix m;
  m.allow(client, ranged, 80, "tcp").allow(client, ranged, 81, "tcp").allow(client, ranged, kUdpPort, "udp");
  m.deny(client, ranged, kAltUdpPort, "udp");
  verify(m);
  EXPECT_GE(drops(ns(), "ranged", "POLICY_DENIED", "ingress"), 1u);
}

TEST_F(CiliumExamples, DenyWinsAndItsDropNamesTheRule) {
  create({server_in(ns(), "vault"), server_in(ns(), "intruder", {{"role", "intruder"}}), server_in(ns(), "friend")});
  Peer vault = at(ns(), "vault"), intruder = at(ns(), "intruder"), friend_ = at(ns(), "friend");
  apply_ok(fill(manifest("deny.yaml"), {{"$NS", ns()}}));
  Matrix m;
  m.deny(intruder, vault, kTcpPort, "tcp").allow(intruder, vault, kAltTcpPort, "tcp").allow(friend_, vault, kTcpPort, "tcp");
  verify(m);
  EXPECT_GE(drops(ns(), "vault", "POLICY_DENY", "ingress"), 1u);
  nlohmann::json f = wait_drop_flow(agent(), {"--to-pod", ns() + "/vault"}, [](const nlohmann::json& f) {
    return f.value("drop_reason_desc", "") == "POLICY_DENY" && f.contains("ingress_denied_by");
  });
  ASSERT_TRUE(f.contains("ingress_denied_by")) << f;
  EXPECT_EQ(f["ingress_denied_by"][0]["name"], "vault-guard") << f;
  EXPECT_EQ(f["ingress_denied_by"][0]["rule_index"], 0) << f;
  EXPECT_EQ(f["ingress_denied_by"][0]["rule"], "spec.ingressDeny[0].toPorts[0]") << f;
}

TEST_F(CiliumExamples, EmptySections) {
  create({server_in(ns(), "sealed"), server_in(ns(), "other"), server_in(ns(), "third")});
  Peer sealed = at(ns(), "sealed"), other = at(ns(), "other"), third = at(ns(), "third");
  CommandResult r = apply_ok(fill(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: seal
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: sealed
  ingress: []
  egress:
  - {}
)yaml", {{"$NS", ns()}}));
  EXPECT_THAT(r.out, HasSubstr("upstream Cilium ignores an empty section")) << r.out;
  Matrix m;
  m.deny(other, sealed, kTcpPort, "tcp").allow(node(), sealed, kTcpPort, "tcp");
  m.deny(sealed, other, kTcpPort, "tcp").allow(third, other, kTcpPort, "tcp");
  verify(m);
  EXPECT_GE(drops(ns(), "sealed", "POLICY_DENIED", "ingress"), 1u);
  EXPECT_GE(drops(ns(), "sealed", "POLICY_DENIED", "egress"), 1u);
}

TEST_F(CiliumExamples, Clusterwide) {
  const std::string other_ns = ns() + "-b";
  create_namespace(other_ns);
  create({server_in(ns(), "locked", {{"zone", "locked-" + ns()}}), server_in(other_ns, "locked2", {{"zone", "locked-" + ns()}}),
          server_in(other_ns, "trusted", {{"zone", "trusted-" + ns()}}), server_in(ns(), "stranger")});
  Peer locked = at(ns(), "locked"), locked2 = at(other_ns, "locked2"), trusted = at(other_ns, "trusted"),
       stranger = at(ns(), "stranger");
  const std::string policy = fill(manifest("clusterwide.yaml"), {{"$NS", ns()}});
  apply_ok(policy);
  Matrix m;
  m.allow(trusted, locked, kTcpPort, "tcp").allow(trusted, locked2, kTcpPort, "tcp");
  m.deny(stranger, locked, kTcpPort, "tcp").deny(stranger, locked2, kTcpPort, "tcp");
  verify(m);
  EXPECT_GE(drops(other_ns, "locked2", "POLICY_DENIED", "ingress"), 1u);
}

TEST_F(CiliumExamples, ServiceAccounts) {
  create({with_service_account(server_in(ns(), "ledger"), "ledger"),
          with_service_account(server_in(ns(), "reporter"), "reporter"), server_in(ns(), "anyone")});
  Peer ledger = at(ns(), "ledger"), reporter = at(ns(), "reporter"), anyone = at(ns(), "anyone");
  apply_ok(fill(manifest("serviceaccount.yaml"), {{"$NS", ns()}}));
  Matrix m;
  m.allow(reporter, ledger, kTcpPort, "tcp").deny(anyone, ledger, kTcpPort, "tcp").allow(anyone, reporter, kTcpPort, "tcp");
  verify(m);
  EXPECT_GE(drops(ns(), "ledger", "POLICY_DENIED", "ingress"), 1u);
}

// The proxy-visibility annotation: HTTP requests to the pod become L7 flows, and pass.
TEST_F(CiliumExamples, ProxyVisibilityShowsHttpWithoutEnforcing) {
  PodManifest web{ns(), "web", {{"app", "web"}}, {"python3", "-m", "http.server", "80", "--bind", "0.0.0.0"}};
  web.annotations["policy.cilium.io/proxy-visibility"] = "<Ingress/80/TCP/HTTP>";
  PodManifest client{ns(), "client", {{"app", "client"}}, {}};
  agent().apply(join_pods({web, client}));
  const std::string url = "http://" + agent().pod_ip(ns(), "web") + "/";
  const std::vector<std::string> get = {
      "python3", "-c",
      "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).status)", url};
  CommandResult r;
  ASSERT_TRUE(wait_until([&] { return (r = agent().run_in_pod(ns(), "client", get)).ok(); }, 60s, 200ms))
      << r.describe();
  EXPECT_THAT(r.out, HasSubstr("200"));
  std::string flows;
  for (int attempt = 0; attempt < 50; attempt++) {
    CommandResult o = agent().pilus({"observe", "--all", "--protocol", "http", "--to-pod", ns() + "/web"});
    flows = o.out;
    if (flows.find("http-request FORWARDED") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_THAT(flows, HasSubstr("http-request FORWARDED")) << "the request went through the proxy";
}

// L7 HTTP: method, path and header rules judged per request by the proxy (403 with
// "Access denied"), the rest forwarded to the server; a pod the rule does not name is
// dropped at L3/L4 before any HTTP.
TEST_F(CiliumExamples, L7HttpRulesJudgeEachRequest) {
  PodManifest shop{ns(), "shop", {{"app", "shop"}}, {"python3", "-m", "http.server", "80", "--bind", "0.0.0.0"}};
  agent().apply(join_pods({shop, idle_pod("storefront", {{"app", "storefront"}}), idle_pod("other")}));
  agent().wait_listening(ns(), "shop", 80);
  apply_ok(fill(manifest("l7-http.yaml"), {{"$NS", ns()}}));
  const std::string base = "http://" + agent().pod_ip(ns(), "shop");
  // "CODE BODY-START" of one request from a pod.
  auto request = [&](const std::string& from, const std::vector<std::string>& curl_args) {
    std::vector<std::string> argv = {"curl", "-s", "-m", "5", "-w", "\n%{http_code}"};
    argv.insert(argv.end(), curl_args.begin(), curl_args.end());
    CommandResult r = agent().run_in_pod(ns(), from, argv);
    size_t nl = r.out.rfind('\n');
    return nl == std::string::npos ? r.describe() : r.out.substr(nl + 1) + " " + r.out.substr(0, nl);
  };
  // Forwarded: the server's own answers (http.server: 404 for a missing file, 501 for POST).
  EXPECT_THAT(request("storefront", {base + "/catalog/shoes"}), ::testing::StartsWith("404"));
  EXPECT_THAT(request("storefront", {"-X", "POST", "-H", "X-Cart: 42", base + "/orders"}),
              ::testing::StartsWith("501"));
  // Denied by the proxy, each with its 403.
  EXPECT_THAT(request("storefront", {base + "/admin"}), ::testing::StartsWith("403 Access denied"));
  EXPECT_THAT(request("storefront", {"-X", "POST", base + "/orders"}), ::testing::StartsWith("403 Access denied"));
  EXPECT_THAT(request("storefront", {"-X", "DELETE", base + "/catalog/shoes"}),
              ::testing::StartsWith("403 Access denied"));
  // Not the storefront: no HTTP at all (dropped at L3/L4, with the drop as evidence).
  // The storefront's answered requests above are the positive control on this server.
  const Peer other = at(ns(), "other"), shop_peer = at(ns(), "shop");
  CommandResult attempt = run_at(other, {netprobe_bin(), "connect", "tcp", shop_peer.ip, "80", "--timeout-ms", "1000"});
  expect_dropped({other, shop_peer, kTcpPort, "tcp"}, attempt, /*control_checked=*/true);
  std::string flows;
  wait_until([&] {
    flows = agent().pilus({"observe", "--all", "--protocol", "http", "--verdict", "DROPPED", "--to-pod", ns() + "/shop"}).out;
    return flows.find("/admin") != std::string::npos;
  });
  EXPECT_THAT(flows, HasSubstr("/admin")) << "the denied request is an L7 flow";
}

TEST_F(CiliumExamples, RefusedFamiliesFailClearly) {
  const std::string all = fill(manifest("refused.yaml"), {{"$NS", ns()}});
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"fqdn", "toFQDNs is not supported by pilus"},
      {"kafka", "kafka is not supported by pilus"},
      {"services", "toServices is not supported by pilus"},
      {"groups", "toGroups is not supported by pilus"},
      {"host-fw", "nodeSelector is not supported by pilus"},
  };
  size_t start = 0;
  std::vector<std::string> docs;
  for (size_t next; (next = all.find("\n---\n", start)) != std::string::npos; start = next + 5)
    docs.push_back(all.substr(start, next - start) + "\n");
  docs.push_back(all.substr(start));
  ASSERT_EQ(docs.size(), expected.size());
  for (size_t i = 0; i < docs.size(); i++) {
    CommandResult r = agent().try_apply(docs[i]);
    EXPECT_FALSE(r.ok()) << expected[i].first;
    EXPECT_THAT(r.err + r.out, HasSubstr(expected[i].second)) << expected[i].first;
  }
  EXPECT_TRUE(policies().empty()) << "nothing half-applied";
}

}  // namespace
}  // namespace pilus::e2e
