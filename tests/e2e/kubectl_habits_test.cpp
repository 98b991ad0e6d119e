// What kubectl, cilium and hubble users type works against a real agent: kubectl-generated
// manifests apply (with warnings for what pilus does not do), `get` narrows like kubectl and
// prints Kubernetes-shaped objects, `apply --dry-run=server` changes nothing, hubble's observe
// flags, and cilium's policy trace flags.
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include <gmock/gmock.h>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using KubectlHabits = PolicyTest;

nlohmann::json json_of(const CommandResult& r) {
  if (!r.ok()) throw HarnessError(r.describe());
  return nlohmann::json::parse(r.out);
}

std::set<std::string> pod_names(const nlohmann::json& list) {
  std::set<std::string> names;
  for (const auto& p : list.at("items")) names.insert(p["metadata"]["namespace"].get<std::string>() + "/" + p["metadata"]["name"].get<std::string>());
  return names;
}

std::vector<nlohmann::json> flow_lines(const std::string& out) {
  std::vector<nlohmann::json> flows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("flow")) flows.push_back(j["flow"]);
    }
  return flows;
}

// Every file under the state dir with its size and modification time: what a write would change.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> state_files(const std::string& dir) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "agent.log")
      files[e.path().string()] = {e.file_size(), e.last_write_time()};
  return files;
}

// As `kubectl create namespace`, `kubectl run`, `kubectl create service clusterip` write them
// with --dry-run=client -o yaml, and a NetworkPolicy as kubectl get -o yaml shows one.
TEST_F(KubectlHabits, KubectlGeneratedManifestsApplyWithWarnings) {
  const std::string k = ns() + "-k";
  std::string yaml = fill(R"yaml(apiVersion: v1
kind: Namespace
metadata:
  creationTimestamp: null
  name: $K
spec: {}
status: {}
---
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: web
  name: web
  namespace: $K
spec:
  containers:
  - image: nginx
    name: web
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
---
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
  namespace: $K
spec:
  ports:
  - name: 80-80
    port: 80
    protocol: TCP
    targetPort: 80
  selector:
    run: web
  type: ClusterIP
status:
  loadBalancer: {}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  creationTimestamp: null
  name: web-ingress
  namespace: $K
spec:
  podSelector:
    matchLabels:
      run: web
  ingress:
  - ports:
    - port: 80
      protocol: TCP
  policyTypes:
  - Ingress
)yaml",
                          {{"$K", k}});
  CommandResult r = agent().pilus({"apply", "-f", "-"}, yaml);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("namespace/" + k + " created"));
  EXPECT_THAT(r.out, HasSubstr("pod/" + k + "/web created"));
  EXPECT_THAT(r.out, HasSubstr("service/" + k + "/web created"));
  EXPECT_THAT(r.out, HasSubstr("networkpolicy/" + k + "/web-ingress created"));
  // kubectl's form, on stderr: one line per field pilus does not act on.
  EXPECT_THAT(r.err, HasSubstr("Warning: <stdin> document 2 (Pod " + k + "/web): spec.containers[0].image: \"nginx\" is not pulled"));
  EXPECT_THAT(r.err, HasSubstr("spec.restartPolicy: Always: pilus runs the command once"));
  EXPECT_THAT(r.err, HasSubstr("spec.dnsPolicy: ignored"));
  EXPECT_THAT(r.out, Not(HasSubstr("Warning:")));
  auto pod = json_of(agent().pilus({"get", "pods", "web", "-n", k, "-o", "json"}));
  EXPECT_EQ(pod["kind"], "Pod");
  EXPECT_EQ(pod["spec"]["containers"][0]["image"], "nginx");
  EXPECT_EQ(pod["status"]["phase"], "Running") << pod.dump();
  auto svc = json_of(agent().pilus({"get", "services", "web", "-n", k, "-o", "json"}));
  EXPECT_EQ(svc["spec"]["ports"][0]["name"], "80-80");

  // The API returns them too, for clients other than the CLI.
  CommandResult again = agent().pilus({"apply", "-f", "-", "-o", "json"}, yaml);
  ASSERT_TRUE(again.ok()) << again.describe();
  auto answer = nlohmann::json::parse(again.out);
  EXPECT_EQ(answer["warnings"].size(), 3u) << answer.dump(2);
  EXPECT_FALSE(answer["results"].empty()) << answer.dump(2);
  for (const auto& res : answer["results"]) EXPECT_EQ(res["action"], "unchanged") << answer.dump(2);
}

TEST_F(KubectlHabits, GetNarrowsByNamespaceSelectorAndName) {
  const std::string other = ns() + "-b";
  agent().apply(namespace_yaml(other));
  create_pods({idle_pod("web", {{"app", "web"}, {"tier", "front"}}), idle_pod("db", {{"app", "db"}}),
               idle_pod("plain", {{"role", "none"}}), PodManifest{other, "web", {{"app", "web"}}, {}}});

  // kubectl's default namespace is "default": none of these.
  CommandResult plain = agent().pilus({"get", "pods"});
  ASSERT_TRUE(plain.ok()) << plain.describe();
  EXPECT_THAT(plain.err, HasSubstr("No resources found in default namespace."));
  auto in_ns = json_of(agent().pilus({"get", "pods", "-n", ns(), "-o", "json"}));
  EXPECT_EQ(pod_names(in_ns), (std::set<std::string>{ns() + "/web", ns() + "/db", ns() + "/plain"}));
  EXPECT_EQ(in_ns["kind"], "List");
  const auto& item = in_ns["items"][0];
  for (const char* key : {"podIP", "netns", "identity", "phase"}) EXPECT_TRUE(item["status"].contains(key)) << key;
  for (const char* key : {"name", "namespace", "labels"}) EXPECT_TRUE(item["metadata"].contains(key)) << key;
  EXPECT_EQ(item["apiVersion"], "v1");
  EXPECT_TRUE(item["spec"].contains("containers"));

  auto all = json_of(agent().pilus({"get", "pods", "-A", "-o", "json"}));
  EXPECT_EQ(pod_names(all).size(), 4u);
  auto select = [&](const std::string& sel) {
    return pod_names(json_of(agent().pilus({"get", "pods", "--all-namespaces", "-l", sel, "-o", "json"})));
  };
  EXPECT_EQ(select("app=web"), (std::set<std::string>{ns() + "/web", other + "/web"}));
  EXPECT_EQ(select("app!=web"), (std::set<std::string>{ns() + "/db", ns() + "/plain"}));
  EXPECT_EQ(select("app in (db, web),tier"), (std::set<std::string>{ns() + "/web"}));
  EXPECT_EQ(select("!app"), (std::set<std::string>{ns() + "/plain"}));
  EXPECT_EQ(select("app"), (std::set<std::string>{ns() + "/web", ns() + "/db", other + "/web"}));
  EXPECT_EQ(pod_names(json_of(agent().pilus({"get", "pods", "--namespace=" + other, "--selector=app=web", "-o", "json"}))),
            (std::set<std::string>{other + "/web"}));
  CommandResult bad_selector = agent().pilus({"get", "pods", "-A", "-l", "app in web"});
  EXPECT_FALSE(bad_selector.ok());
  EXPECT_THAT(bad_selector.err, HasSubstr("app in web"));

  // One name: the object itself; yaml, name and wide too.
  auto web = json_of(agent().pilus({"get", "pods", "web", "-n", ns(), "-o", "json"}));
  EXPECT_EQ(web["kind"], "Pod");
  EXPECT_EQ(web["metadata"]["labels"]["tier"], "front");
  CommandResult yaml = agent().pilus({"get", "pod", "web", "-n", ns(), "-o", "yaml"});
  ASSERT_TRUE(yaml.ok()) << yaml.describe();
  EXPECT_THAT(yaml.out, HasSubstr("apiVersion: v1\n"));
  EXPECT_THAT(yaml.out, HasSubstr("kind: Pod\n"));
  EXPECT_THAT(yaml.out, HasSubstr("podIP: " + web["status"]["podIP"].get<std::string>()));
  CommandResult names = agent().pilus({"get", "po", "-n", ns(), "-l", "app", "-o", "name"});
  EXPECT_EQ(names.out, "pod/db\npod/web\n") << names.describe();
  CommandResult wide = agent().pilus({"get", "pods", "-A", "-o", "wide"});
  EXPECT_THAT(wide.out, HasSubstr("NAMESPACE"));
  EXPECT_THAT(wide.out, HasSubstr("NETNS"));
  EXPECT_THAT(wide.out, HasSubstr("pl-" + ns() + "_web"));
  CommandResult table = agent().pilus({"get", "pods", "-n", ns()});
  EXPECT_THAT(table.out, Not(HasSubstr("NETNS")));
  EXPECT_THAT(table.out, HasSubstr(web["status"]["podIP"].get<std::string>()));

  CommandResult unknown = agent().pilus({"get", "pods", "-o", "xml"});
  EXPECT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.err, HasSubstr("unknown output format \"xml\" (known: json, yaml, wide, name)"));
  CommandResult missing = agent().pilus({"get", "pods", "nosuch", "-n", ns()});
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.err, HasSubstr("pods \"nosuch\" not found in namespace \"" + ns() + "\""));
  auto namespaces = json_of(agent().pilus({"get", "namespaces", "-o", "json"}));
  bool listed = false;
  for (const auto& n : namespaces["items"]) listed = listed || n["metadata"]["name"] == other;
  EXPECT_TRUE(listed) << "namespaces are cluster-scoped: -n does not narrow them";
}

TEST_F(KubectlHabits, ServerDryRunPlansAgainstTheLiveStateAndChangesNothing) {
  const std::string pod_yaml = idle_pod("dry").yaml();
  const std::string policy_yaml = fill(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: dry
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: dry
  ingress:
  - fromEntities: [host]
)yaml",
                                       {{"$NS", ns()}});
  const std::string both = join_documents({pod_yaml, policy_yaml});
  auto before = state_files(agent().state_dir());
  auto endpoints_before = agent().bpf_endpoints()["items"].size();

  CommandResult dry = agent().pilus({"apply", "--dry-run=server", "-f", "-"}, both);
  ASSERT_TRUE(dry.ok()) << dry.describe();
  EXPECT_THAT(dry.out, HasSubstr("pod/" + ns() + "/dry created (server dry run)"));
  EXPECT_THAT(dry.out, HasSubstr("ciliumnetworkpolicy/" + ns() + "/dry created (server dry run)"));
  EXPECT_FALSE(netns_exists("pl-" + ns() + "_dry")) << "a dry run creates no pod network";
  EXPECT_EQ(agent().bpf_endpoints()["items"].size(), endpoints_before);
  EXPECT_EQ(state_files(agent().state_dir()), before) << "a dry run writes nothing to the store";
  EXPECT_EQ(agent().pilus({"get", "pods", "-n", ns(), "-o", "name"}).out, "");
  EXPECT_EQ(json_of(agent().pilus({"get", "policies", "-A", "-o", "json"}))["items"].size(), 0u);

  agent().apply(both);
  CommandResult same = agent().pilus({"apply", "--dry-run=server", "-f", "-"}, both);
  EXPECT_THAT(same.out, HasSubstr("pod/" + ns() + "/dry unchanged (server dry run)"));
  EXPECT_THAT(same.out, HasSubstr("ciliumnetworkpolicy/" + ns() + "/dry unchanged (server dry run)"));
  PodManifest relabelled = idle_pod("dry", {{"app", "dry"}, {"extra", "yes"}});
  CommandResult changed = agent().pilus({"apply", "--dry-run=server", "-f", "-"}, relabelled.yaml());
  EXPECT_THAT(changed.out, HasSubstr("pod/" + ns() + "/dry configured (server dry run)")) << changed.describe();
  EXPECT_FALSE(agent().pod(ns(), "dry")["metadata"]["labels"].contains("extra")) << "labels unchanged by a dry run";

  // Checked against the live state as a real apply would be: a pod's spec cannot change.
  PodManifest respec = idle_pod("dry");
  respec.command = {"sleep", "1"};
  CommandResult refused = agent().pilus({"apply", "--dry-run=server", "-f", "-"}, respec.yaml());
  EXPECT_FALSE(refused.ok());
  EXPECT_THAT(refused.err, HasSubstr("a pod's spec cannot change"));
}

TEST_F(KubectlHabits, VersionUnknownCommandsAndTheGlobalConntrackTable) {
  CommandResult version = agent().pilus({"version"});
  EXPECT_TRUE(version.ok()) << version.describe();
  EXPECT_THAT(version.out, HasSubstr("pilus version "));
  CommandResult flag = run_command({pilus_bin(), "--version"});
  EXPECT_TRUE(flag.ok()) << flag.describe();
  EXPECT_THAT(flag.out, HasSubstr("pilus version "));
  CommandResult unknown = agent().pilus({"endpoint", "list"});
  EXPECT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.err, HasSubstr("unknown command \"endpoint\" for \"pilus\""));
  EXPECT_THAT(unknown.err, HasSubstr("get"));
  EXPECT_THAT(unknown.err, HasSubstr("observe"));

  CommandResult global = agent().pilus({"bpf", "ct", "list", "global", "-o", "json"});
  ASSERT_TRUE(global.ok()) << global.describe();
  EXPECT_TRUE(nlohmann::json::parse(global.out).contains("items"));
  CommandResult other = agent().pilus({"bpf", "ct", "list", "local"});
  EXPECT_FALSE(other.ok());
  EXPECT_THAT(other.err, HasSubstr("unknown conntrack table \"local\" (pilus has one: global)"));
  CommandResult extra = agent().pilus({"bpf", "ipcache", "list", "x"});
  EXPECT_FALSE(extra.ok());
  EXPECT_THAT(extra.err, HasSubstr("unexpected argument \"x\""));
}

// One pod-to-pod packet is seen twice: leaving the client (from-endpoint, its egress) and
// arriving at the server (to-endpoint, its ingress), as Hubble names the observation points.
TEST_F(KubectlHabits, ObserveTellsTheTwoEndsApartAndTakesHubblesFlags) {
  create({server_in(ns(), "server"), server_in(ns(), "client")});
  expect_reachable(at(ns(), "client"), at(ns(), "server"), kTcpPort, "tcp");

  // Flows reach the observer up to one reader poll (100 ms) after the packet: wait for both ends.
  CommandResult r;
  std::map<std::string, std::string> point_direction;
  wait_until([&] {
    r = agent().pilus({"observe", "--all", "-o", "jsonpb", "--from-pod", ns() + "/client", "--to-pod",
                       ns() + "/server", "-t", "trace"});
    point_direction.clear();
    for (const auto& f : flow_lines(r.out))
      if (f.contains("l4") && f["l4"].contains("TCP") && f["l4"]["TCP"]["flags"].contains("SYN") &&
          !f["l4"]["TCP"]["flags"].contains("ACK"))
        point_direction[f["trace_observation_point"].get<std::string>()] = f["traffic_direction"];
    return r.ok() && point_direction.size() >= 2;
  }, 10s);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(point_direction["FROM_ENDPOINT"], "EGRESS") << r.out;
  EXPECT_EQ(point_direction["TO_ENDPOINT"], "INGRESS") << r.out;

  CommandResult in_ns = agent().pilus({"observe", "--all", "-n", ns(), "-t", "trace", "-o", "json"});
  ASSERT_TRUE(in_ns.ok()) << in_ns.describe();
  auto ns_flows = flow_lines(in_ns.out);
  EXPECT_FALSE(ns_flows.empty());
  for (const auto& f : ns_flows)
    EXPECT_TRUE(f["source"].value("namespace", "") == ns() || f["destination"].value("namespace", "") == ns()) << f.dump();
  CommandResult compact = agent().pilus({"observe", "-t", "trace:to-endpoint", "--from-pod",
                                         ns() + "/client", "--first", "1", "--print-node-name", "--time-format",
                                         "RFC3339"});
  ASSERT_TRUE(compact.ok()) << compact.describe();
  std::regex line(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[[^\]]+\]: )" + ns() +
                  R"(/client:\d+ \(ID:\d+\) -> )" + ns() + R"(/server:\d+ \(ID:\d+\) to-endpoint FORWARDED \(TCP Flags: SYN\)\n$)");
  EXPECT_TRUE(std::regex_match(compact.out, line)) << compact.out;
  CommandResult from = agent().pilus({"observe", "--all", "-t", "trace:from-endpoint", "--from-pod", ns() + "/client",
                                      "--to-pod", ns() + "/server"});
  EXPECT_THAT(from.out, HasSubstr(" from-endpoint FORWARDED (TCP Flags: SYN)")) << from.describe();
  EXPECT_THAT(from.out, Not(HasSubstr("to-endpoint"))) << from.describe();

  CommandResult both = agent().pilus({"observe", "-A", "-n", ns()});
  EXPECT_FALSE(both.ok());
  EXPECT_THAT(both.err, HasSubstr("-A/--all-namespaces and -n/--namespace cannot be combined"));
  CommandResult bad_time = agent().pilus({"observe", "--time-format", "Kitchen"});
  EXPECT_FALSE(bad_time.ok());
  EXPECT_THAT(bad_time.err, HasSubstr("RFC3339Nano"));
  CommandResult bad_output = agent().pilus({"observe", "-o", "xml"});
  EXPECT_FALSE(bad_output.ok());
  EXPECT_THAT(bad_output.err, HasSubstr("known: compact, json, jsonpb, table"));
}

TEST_F(KubectlHabits, PolicyTraceTakesCiliumsFlags) {
  create({server_in(ns(), "a"), server_in(ns(), "b")});
  apply_ok(fill(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: a-to-b
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
)yaml",
                {{"$NS", ns()}}));
  const std::string in_ns = "k8s:io.kubernetes.pod.namespace=" + ns();
  auto labels = json_of(agent().pilus({"policy", "trace", "-s", "k8s:app=a", "-s", in_ns, "-d", "k8s:app=b," + in_ns,
                                       "--dport", "80/tcp", "-o", "json"}));
  EXPECT_EQ(labels["verdict"], "ALLOWED") << labels.dump(2);
  auto denied = json_of(agent().pilus({"policy", "trace", "--src", "k8s:app=b", "--src", in_ns, "--dst",
                                       "k8s:app=b", "--dst", in_ns, "--dport", "80/tcp", "-o", "json"}));
  EXPECT_EQ(denied["verdict"], "DENIED") << denied.dump(2);
  auto pods = json_of(agent().pilus({"policy", "trace", "--src-k8s-pod", ns() + ":a", "--dst-k8s-pod", ns() + ":b",
                                     "--dport", "80/tcp", "-o", "json"}));
  EXPECT_EQ(pods["verdict"], "ALLOWED") << pods.dump(2);
  CommandResult text = agent().pilus({"policy", "trace", "--src-k8s-pod", ns() + ":a", "--dst-k8s-pod", ns() + ":b",
                                      "--dport", "8080/tcp"});
  EXPECT_THAT(text.out, HasSubstr("Final verdict: DENIED")) << text.describe();
  CommandResult both = agent().pilus({"policy", "trace", "-s", "k8s:app=a", "--src-k8s-pod", ns() + ":a", "--dst-k8s-pod",
                                      ns() + ":b"});
  EXPECT_FALSE(both.ok());
}

}  // namespace
}  // namespace pilus::e2e
