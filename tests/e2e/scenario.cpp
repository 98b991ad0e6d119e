// Scenario vocabulary: how a pod, the node and the outside are reached, and what counts as an answer.
#include "e2e/scenario.h"

#include <thread>

namespace pilus::e2e {

void PodNetworkTest::SetUp() { agent_ = std::make_unique<TestAgent>(agent_options()); }

// Torn down here rather than in the fixture's destructor so that anything the
// cleanup finds wrong is still reported against this test.
void PodNetworkTest::TearDown() { agent_.reset(); }

PodManifest PodNetworkTest::server_pod(const std::string& name, std::map<std::string, std::string> labels) const {
  if (labels.empty()) labels = {{"app", name}};
  return {ns(), name, labels,
          {netprobe_bin(), "serve", "--tcp", std::to_string(kTcpPort), "--udp", std::to_string(kUdpPort), "--name", name}};
}

PodManifest PodNetworkTest::idle_pod(const std::string& name, std::map<std::string, std::string> labels) const {
  if (labels.empty()) labels = {{"app", name}};
  return {ns(), name, labels, {}};
}

void PodNetworkTest::create_pods(const std::vector<PodManifest>& pods) {
  agent_->apply(join_pods(pods));
  for (const auto& p : pods) {
    if (p.command.empty()) continue;
    wait_listening(p.name, kTcpPort, "tcp");
    wait_listening(p.name, kUdpPort, "udp");
  }
}

void PodNetworkTest::delete_pods(const std::vector<PodManifest>& pods) { agent_->remove(join_pods(pods)); }

// Readiness is read from the pod's own socket table, not through the
// datapath, so that waiting never hides a connectivity failure.
void PodNetworkTest::wait_listening(const std::string& pod_name, int port, const std::string& proto) {
  std::vector<std::string> ss = {"ss", "-Hln", proto == "tcp" ? "-t" : "-u", "sport = :" + std::to_string(port)};
  for (int attempt = 0; attempt < 100; attempt++) {
    CommandResult r = agent_->run_in_pod(ns(), pod_name, ss);
    if (r.ok() && !r.out.empty()) return;
    std::this_thread::sleep_for(100ms);
  }
  throw HarnessError("pod " + pod_name + " never listened on " + std::to_string(port) + "/" + proto);
}

Peer PodNetworkTest::pod(const std::string& name) const {
  auto p = agent_->pod(ns(), name);
  return {name, p["status"]["podIP"].get<std::string>(), p["status"]["netns"].get<std::string>()};
}

Peer PodNetworkTest::node() const { return {"node", agent_->router_ip(), ""}; }

CommandResult PodNetworkTest::run_at(const Peer& where, const std::vector<std::string>& argv,
                                     std::chrono::milliseconds timeout) const {
  std::vector<std::string> full;
  if (!where.netns.empty()) full = {"ip", "netns", "exec", where.netns};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_command(full, "", timeout);
}

CommandResult PodNetworkTest::connect(const Peer& from, const Peer& to, int port, const std::string& proto,
                                      int timeout_ms) {
  return run_at(from, {netprobe_bin(), "connect", proto, to.ip, std::to_string(port), "--message",
                       "hello-from-" + from.name, "--timeout-ms", std::to_string(timeout_ms)});
}

void PodNetworkTest::expect_reachable(const Peer& from, const Peer& to, int port, const std::string& proto) {
  CommandResult r = connect(from, to, port, proto, 3000);
  std::string expected = to.name + ": hello-from-" + from.name;
  if (!r.ok() || r.out.find(expected) == std::string::npos)
    ADD_FAILURE() << from.name << " -> " << to.name << " (" << to.ip << ":" << port << "/" << proto
                  << ") should answer \"" << expected << "\"\n"
                  << r.describe();
}

void PodNetworkTest::expect_unreachable(const Peer& from, const Peer& to, int port, const std::string& proto) {
  CommandResult r = connect(from, to, port, proto, 1000);
  if (r.ok())
    ADD_FAILURE() << from.name << " -> " << to.name << " (" << to.ip << ":" << port << "/" << proto
                  << ") should get no answer\n"
                  << r.describe();
}

void PodNetworkTest::expect_ping(const Peer& from, const Peer& to) {
  CommandResult r = run_at(from, {"ping", "-n", "-c", "1", "-W", "3", to.ip});
  if (!r.ok()) ADD_FAILURE() << from.name << " should ping " << to.name << " (" << to.ip << ")\n" << r.describe();
}

void PodNetworkTest::expect_no_ping(const Peer& from, const Peer& to) {
  CommandResult r = run_at(from, {"ping", "-n", "-c", "1", "-W", "1", to.ip});
  if (r.ok()) ADD_FAILURE() << from.name << " should not ping " << to.name << " (" << to.ip << ")\n" << r.describe();
}

uint64_t PodNetworkTest::datapath_packets(const std::string& pod_name, const std::string& reason,
                                          const std::string& direction) {
  auto endpoint_id = agent_->pod(ns(), pod_name)["status"]["endpointID"];
  const auto maps = agent_->bpf_endpoints();  // kept alive: the loop walks a part of it
  uint64_t packets = 0;
  for (const auto& c : maps["counters"])
    if (c["endpointID"] == endpoint_id && c["reason"] == reason && (direction.empty() || c["direction"] == direction))
      packets += c["packets"].get<uint64_t>();
  return packets;
}

}  // namespace pilus::e2e
