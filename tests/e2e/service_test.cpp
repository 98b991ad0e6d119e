// Services end to end: a ClusterIP in front of pods that answer with their
// name, reached through the socket load balancer (clients in pilus's cgroup)
// and through the per-packet fallback (clients started with `ip netns exec`).
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "e2e/harness.h"
#include "e2e/scenario.h"

namespace pilus::e2e {
namespace {

// What `netprobe spread` saw.
struct Spread {
  std::map<std::string, int> answers;
  int errors = 0;
  int peer_matches = 0;
  std::string first_error;
  std::string raw;
};

class ServiceTest : public PodNetworkTest {
 protected:
  std::string service_yaml(const std::string& name, const std::string& app, int port, int target,
                           const std::string& proto = "TCP", const std::string& extra_spec = "") const {
    return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns() +
           "\nspec:\n  selector:\n    app: " + app + "\n" + extra_spec + "  ports:\n  - port: " + std::to_string(port) +
           "\n    targetPort: " + std::to_string(target) + "\n    protocol: " + proto + "\n";
  }

  nlohmann::json service(const std::string& name) const {
    // One name: the object itself, as kubectl prints it.
    CommandResult r = agent_->pilus({"get", "services", name, "-n", ns(), "-o", "json"});
    if (!r.ok()) throw HarnessError("service " + name + " not listed: " + r.describe());
    return nlohmann::json::parse(r.out);
  }
  std::string vip(const std::string& name) const { return service(name)["spec"]["clusterIP"]; }

  // Many short connections from a pod. In pilus's cgroup, as the pod's own
  // processes are (socket path); or outside it, as `ip netns exec` is (TC path).
  Spread spread(const Peer& from, const std::string& ip, int port, const std::string& proto, int count,
                bool in_cgroup, int timeout_ms = 2000) {
    std::vector<std::string> probe = {"ip",  "netns", "exec",  from.netns, netprobe_bin(), "spread", proto, ip,
                                      std::to_string(port), "--count", std::to_string(count), "--timeout-ms",
                                      std::to_string(timeout_ms)};
    CommandResult r;
    if (in_cgroup) {
      std::string line;
      for (const auto& a : probe) line += " '" + a + "'";
      r = run_command({"sh", "-c", "echo $$ > '" + agent_->cgroup_dir() + "/cgroup.procs' && exec" + line}, "", 60s);
    } else {
      r = run_command(probe, "", 60s);
    }
    Spread s;
    s.raw = r.describe();
    try {
      auto j = nlohmann::json::parse(r.out);
      for (auto& [k, v] : j["answers"].items()) s.answers[k] = v.get<int>();
      s.errors = j["errors"];
      s.peer_matches = j["peer_matches"];
      s.first_error = j["first_error"];
    } catch (const std::exception& e) {
      throw HarnessError("netprobe spread gave no JSON: " + r.describe());
    }
    return s;
  }

  // Entries in a BPF map, as `pilus status` reports them.
  size_t map_entries(const std::string& map) const {
    CommandResult r = agent_->pilus({"status", "-o", "json"});
    const auto status = nlohmann::json::parse(r.out);  // kept alive: the loop walks a part of it
    for (const auto& m : status["maps"])
      if (m["name"] == map) return m["entries"].get<size_t>();
    throw HarnessError("map " + map + " not in pilus status: " + r.describe());
  }

  void create_web_backends() {
    create_pods({server_pod("web-a", {{"app", "web"}}), server_pod("web-b", {{"app", "web"}}),
                 server_pod("web-c", {{"app", "web"}}), idle_pod("client")});
  }
};

TEST_F(ServiceTest, ShortConnectionsReachAllThreeBackendsAndARemovedOneNoMore) {
  create_web_backends();
  agent().apply(service_yaml("web", "web", 8000, kTcpPort));
  const std::string ip = vip("web");
  EXPECT_EQ(ip.rfind("10.96.", 0), 0u) << ip;

  Spread s = spread(pod("client"), ip, 8000, "tcp", 90, true);
  EXPECT_EQ(s.errors, 0) << s.raw;
  ASSERT_EQ(s.answers.size(), 3u) << s.raw;
  for (const auto& [name, n] : s.answers) {
    RecordProperty("socket_tcp_" + name, n);
    EXPECT_GE(n, 15) << name << " got too few of 90 connections: " << s.raw;  // fair share 30
  }
  EXPECT_EQ(s.peer_matches, 90) << "getpeername must show the VIP: " << s.raw;
  EXPECT_EQ(map_entries("lb_nat"), 0u) << "the socket path translates once per socket, no per-packet NAT";

  delete_pods({server_pod("web-b", {{"app", "web"}})});
  Spread after = spread(pod("client"), ip, 8000, "tcp", 40, true);
  EXPECT_EQ(after.errors, 0) << after.raw;
  EXPECT_EQ(after.answers.count("web-b"), 0u) << after.raw;
  EXPECT_EQ(after.answers.size(), 2u) << after.raw;
}

TEST_F(ServiceTest, UdpServiceAnswersFromTheVip) {
  create_web_backends();
  agent().apply(service_yaml("dns", "web", 5300, kUdpPort, "UDP"));
  Spread s = spread(pod("client"), vip("dns"), 5300, "udp", 60, true);
  EXPECT_EQ(s.errors, 0) << s.raw;
  EXPECT_EQ(s.answers.size(), 3u) << s.raw;
  EXPECT_EQ(s.peer_matches, 60) << "recvfrom must show the VIP as the source: " << s.raw;
}

TEST_F(ServiceTest, ClientOutsideTheCgroupUsesThePerPacketPath) {
  create_web_backends();
  agent().apply(service_yaml("web", "web", 8000, kTcpPort));
  Spread s = spread(pod("client"), vip("web"), 8000, "tcp", 60, false);
  EXPECT_EQ(s.errors, 0) << s.raw;
  EXPECT_EQ(s.answers.size(), 3u) << s.raw;
  for (const auto& [name, n] : s.answers) RecordProperty("tc_tcp_" + name, n);
  EXPECT_EQ(s.peer_matches, 60) << "replies must come back from the VIP: " << s.raw;
  EXPECT_GT(map_entries("lb_nat"), 0u);

  agent().apply(service_yaml("dns", "web", 5300, kUdpPort, "UDP"));
  Spread u = spread(pod("client"), vip("dns"), 5300, "udp", 30, false);
  EXPECT_EQ(u.errors, 0) << u.raw;
  EXPECT_EQ(u.peer_matches, 30) << u.raw;
}

// A backend that leaves the service (relabelled, its pod alive) gets no new
// connection, but a connection already open through the per-packet path goes on.
TEST_F(ServiceTest, BackendLeavingTheServiceKeepsItsEstablishedConnection) {
  create_pods({server_pod("web-a", {{"app", "web"}}), idle_pod("client")});
  agent().apply(service_yaml("web", "web", 8000, kTcpPort));
  const std::string ip = vip("web");
  ChildProcess stream({"ip", "netns", "exec", pod("client").netns, netprobe_bin(), "stream", ip, "8000",
                       "--duration-ms", "3000", "--interval-ms", "20"});
  // Relabel only once the connection carries traffic (to the backend: conntrack sees it after DNAT).
  bool flowing = false;
  for (auto deadline = std::chrono::steady_clock::now() + 20s; !flowing && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(50ms))
    flowing = agent().tracked_packets(pod("client").ip, pod("web-a").ip + ":" + std::to_string(kTcpPort)) >= 10;
  ASSERT_TRUE(flowing) << "the stream through the service never started";
  PodManifest relabelled = server_pod("web-a", {{"app", "retired"}});
  agent().apply(join_pods({relabelled}));
  CommandResult lb = agent().pilus({"bpf", "lb", "list", "-o", "json"});
  auto backends = nlohmann::json::parse(lb.out)["services"][0]["backends"];
  ASSERT_EQ(backends.size(), 1u) << lb.out;
  EXPECT_EQ(backends[0]["state"], "terminating");
  Spread fresh = spread(pod("client"), ip, 8000, "tcp", 3, true);
  EXPECT_EQ(fresh.errors, 3) << "no active backend is left: " << fresh.raw;

  CommandResult r = stream.wait(20s);
  ASSERT_TRUE(r.ok()) << r.describe();
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["errors"], 0) << r.out;
  EXPECT_GT(j["received"].get<int>(), 50) << r.out;
}

TEST_F(ServiceTest, ClientIpAffinityKeepsAClientOnOneBackend) {
  create_web_backends();
  agent().apply(service_yaml("sticky", "web", 8000, kTcpPort, "TCP", "  sessionAffinity: ClientIP\n"));
  for (bool in_cgroup : {true, false}) {
    Spread s = spread(pod("client"), vip("sticky"), 8000, "tcp", 30, in_cgroup);
    EXPECT_EQ(s.errors, 0) << s.raw;
    EXPECT_EQ(s.answers.size(), 1u) << (in_cgroup ? "socket" : "TC") << " path: " << s.raw;
  }
}

TEST_F(ServiceTest, ServiceWithoutBackendsIsRefusedAtOnceAndCounted) {
  create_pods({idle_pod("client")});
  agent().apply(service_yaml("empty", "nobody", 8000, kTcpPort));
  Spread s = spread(pod("client"), vip("empty"), 8000, "tcp", 5, true);
  EXPECT_EQ(s.errors, 5) << s.raw;
  EXPECT_NE(s.first_error.find("Operation not permitted"), std::string::npos) << s.raw;
  EXPECT_GE(agent().counted_packets("SERVICE_BACKEND_NOT_FOUND"), 5u);

  // The per-packet path counts the same reason and answers the SYN with a RST.
  Spread tc = spread(pod("client"), vip("empty"), 8000, "tcp", 5, false, 2000);
  EXPECT_EQ(tc.errors, 5) << tc.raw;
  EXPECT_NE(tc.first_error.find("Connection refused"), std::string::npos) << tc.raw;
  EXPECT_GE(datapath_packets("client", "SERVICE_BACKEND_NOT_FOUND", "egress"), 5u);

  // UDP on the per-packet path: an ICMP port unreachable from the VIP, which a connected socket
  // reports at once as a refusal.
  agent().apply(service_yaml("empty-udp", "nobody", 8001, kUdpPort, "UDP"));
  CommandResult udp = run_command({"ip", "netns", "exec", pod("client").netns, netprobe_bin(), "connect", "udp",
                                   vip("empty-udp"), "8001", "--timeout-ms", "2000"});
  EXPECT_EQ(udp.exit_code, 1) << "refused, not timed out (3): " << udp.describe();
  EXPECT_NE(udp.out.find("Connection refused"), std::string::npos) << udp.describe();
}

TEST_F(ServiceTest, ListsServicesAndTheLoadBalancerState) {
  create_web_backends();
  agent().apply(service_yaml("web", "web", 8000, kTcpPort, "TCP", "  clusterIP: 10.96.77.7\n"));
  auto svc = service("web");
  EXPECT_EQ(svc["spec"]["clusterIP"], "10.96.77.7");
  EXPECT_EQ(svc["status"]["backends"].size(), 3u) << svc.dump();

  CommandResult table = agent().pilus({"get", "services", "-A"});
  EXPECT_NE(table.out.find("10.96.77.7"), std::string::npos) << table.describe();
  CommandResult lb = agent().pilus({"bpf", "lb", "list", "-o", "json"});
  ASSERT_TRUE(lb.ok()) << lb.describe();
  auto j = nlohmann::json::parse(lb.out);
  ASSERT_EQ(j["services"].size(), 1u) << lb.out;
  const auto& entry = j["services"][0];
  EXPECT_EQ(entry["vip"], "10.96.77.7");
  EXPECT_EQ(entry["port"], 8000);
  EXPECT_EQ(entry["maglev_table_size"], j["maglev_table_size"]);
  int slots = 0;
  for (const auto& b : entry["backends"]) {
    EXPECT_EQ(b["state"], "active");
    slots += b["maglev_slots"].get<int>();
  }
  EXPECT_EQ(slots, j["maglev_table_size"].get<int>());
  CommandResult text = agent().pilus({"bpf", "lb", "list"});
  EXPECT_NE(text.out.find("10.96.77.7:8000/TCP"), std::string::npos) << text.describe();
  CommandResult metrics = run_command({"curl", "-s", "http://" + agent().metrics_addr() + "/metrics"});
  EXPECT_NE(metrics.out.find("pilus_service_backends{service=\"" + ns() + "/web\",frontend=\"10.96.77.7:8000/TCP\"} 3"),
            std::string::npos)
      << metrics.describe();
}

TEST_F(ServiceTest, BadServicesAreRefusedAndNothingIsApplied) {
  create_pods({idle_pod("client")});
  CommandResult outside = agent().try_apply(service_yaml("web", "web", 80, 80, "TCP", "  clusterIP: 192.168.1.1\n"));
  EXPECT_FALSE(outside.ok());
  EXPECT_NE(outside.err.find("not a usable address of the service CIDR"), std::string::npos) << outside.describe();

  // Two services asking for the same address, in one apply: neither is created.
  std::string both = service_yaml("one", "web", 80, 80, "TCP", "  clusterIP: 10.96.5.5\n") + "---\n" +
                     service_yaml("two", "web", 80, 80, "TCP", "  clusterIP: 10.96.5.5\n");
  CommandResult clash = agent().try_apply(both);
  EXPECT_FALSE(clash.ok());
  EXPECT_NE(clash.err.find("also asked for"), std::string::npos) << clash.describe();
  CommandResult list = agent().pilus({"get", "services", "-A", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(list.out)["items"].size(), 0u) << list.out;
}

// All or nothing, in the kernel: an apply refused because of its last document (a cluster IP
// or a pod spec that cannot change) leaves every BPF map as it was, although the documents
// before it were valid: no new pod endpoint or ipcache entry, no new service or backend, no
// policy entry. The same documents without the bad one do change the maps (the snapshot sees it).
TEST_F(ServiceTest, RefusedAppliesLeaveTheBpfMapsAsTheyWere) {
  create_web_backends();
  agent().apply(service_yaml("web", "web", 8000, kTcpPort, "TCP", "  clusterIP: 10.96.77.7\n"));
  auto maps = [&] {
    auto json_of = [&](std::vector<std::string> args) {
      args.insert(args.end(), {"-o", "json"});
      CommandResult r = agent().pilus(args);
      if (!r.ok()) throw HarnessError(r.describe());
      return nlohmann::json::parse(r.out);
    };
    return nlohmann::json{{"lb", json_of({"bpf", "lb", "list"})},
                          {"endpoints", json_of({"bpf", "endpoints", "list"})["items"]},
                          {"ipcache", json_of({"bpf", "ipcache", "list"})["items"]},
                          {"policy", json_of({"bpf", "policy", "get", ns() + "/web-a"})}};
  };
  const nlohmann::json before = maps();
  const std::string valid = join_documents(
      {idle_pod("late", {{"app", "web"}}).yaml(), service_yaml("extra", "web", 9000, kTcpPort, "TCP", "  clusterIP: 10.96.77.9\n"),
       "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: web-in\n  namespace: " + ns() +
           "\nspec:\n  endpointSelector:\n    matchLabels:\n      app: web\n  ingress:\n  - fromEndpoints:\n"
           "    - matchLabels:\n        app: client\n"});

  PodManifest respec = idle_pod("client");
  respec.command = {"sleep", "1000"};
  struct Refusal {
    std::string what, document, error;
  };
  const std::vector<Refusal> refusals = {
      {"clusterIP change", service_yaml("web", "web", 8000, kTcpPort, "TCP", "  clusterIP: 10.96.77.8\n"),
       "cluster IP cannot change"},
      {"pod spec change", respec.yaml(), "a pod's spec cannot change"},
  };
  for (const Refusal& r : refusals) {
    SCOPED_TRACE(r.what);
    CommandResult refused = agent().try_apply(join_documents({valid, r.document}));
    EXPECT_FALSE(refused.ok()) << refused.describe();
    EXPECT_NE(refused.err.find(r.error), std::string::npos) << refused.describe();
    EXPECT_EQ(maps(), before) << "a refused apply changed the datapath";
    EXPECT_FALSE(netns_exists("pl-" + ns() + "_late")) << "a refused apply created a pod network";
  }

  agent().apply(valid);
  nlohmann::json after = maps();
  EXPECT_NE(after["lb"], before["lb"]) << "the control: a new service and backend";
  EXPECT_EQ(after["endpoints"].size(), before["endpoints"].size() + 1) << after["endpoints"].dump();
  EXPECT_NE(after["policy"], before["policy"]);
}

TEST_F(ServiceTest, ServicesSurviveAnAgentRestart) {
  create_web_backends();
  agent().apply(service_yaml("web", "web", 8000, kTcpPort));
  const std::string ip = vip("web");
  agent().restart(SIGTERM);
  EXPECT_EQ(vip("web"), ip);
  Spread s = spread(pod("client"), ip, 8000, "tcp", 30, true);
  EXPECT_EQ(s.errors, 0) << s.raw;
  EXPECT_EQ(s.answers.size(), 3u) << s.raw;
}

}  // namespace
}  // namespace pilus::e2e
