// Scenario vocabulary: how a pod, the node and the outside are reached, and what counts as an answer.
#include "e2e/scenario.h"

#include <thread>

namespace pilus::e2e {

std::string Probe::describe() const {
  std::string where = proto == "icmp" ? to.ip : to.ip + ":" + std::to_string(port);
  return from.name + " -> " + to.name + " (" + where + "/" + proto + ")";
}

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
  agent_->wait_listening(ns(), pod_name, port, proto);
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
  expect_dropped({from, to, port, proto}, r);
}

void PodNetworkTest::expect_ping(const Peer& from, const Peer& to) {
  CommandResult r = run_at(from, {"ping", "-n", "-c", "1", "-W", "3", to.ip});
  if (!r.ok()) ADD_FAILURE() << from.name << " should ping " << to.name << " (" << to.ip << ")\n" << r.describe();
}

void PodNetworkTest::expect_no_ping(const Peer& from, const Peer& to) {
  CommandResult r = run_at(from, {"ping", "-n", "-c", "1", "-W", "1", to.ip});
  expect_dropped({from, to, 0, "icmp"}, r);
}

namespace {

// What a drop looks like from the sender: nothing came back in time. netprobe exits 3 on a
// timeout (1 on a refusal or reset); ping exits 1 when no reply came (2 on other errors).
bool got_no_answer(const Probe& p, const CommandResult& r) {
  if (r.timed_out) return false;
  if (p.proto == "icmp") return r.exit_code == 1 && r.out.find(" 0 received") != std::string::npos;
  return r.exit_code == 3;
}

}  // namespace

void PodNetworkTest::expect_dropped(const Probe& p, const CommandResult& attempt, bool control_checked) {
  if (attempt.ok()) {
    ADD_FAILURE() << p.describe() << " should get no answer\n" << attempt.describe();
    return;
  }
  if (!got_no_answer(p, attempt)) {
    ADD_FAILURE() << p.describe() << " should time out as a dropped packet does, not fail otherwise\n"
                  << attempt.describe();
    return;
  }
  expect_drop_flow(p);
  // The positive control: the node is always allowed into a pod, so a server that is up
  // answers it. Only pods have a server to ask.
  if (control_checked || p.to.netns.empty()) return;
  Peer from_node = node();
  if (p.proto == "icmp") {
    CommandResult r = run_at(from_node, {"ping", "-n", "-c", "1", "-W", "3", p.to.ip});
    if (!r.ok()) ADD_FAILURE() << "control for " << p.describe() << ": the node should ping it\n" << r.describe();
    return;
  }
  CommandResult r = connect(from_node, p.to, p.port, p.proto, 3000);
  if (!r.ok() || r.out.find(p.to.name + ": hello-from-node") == std::string::npos)
    ADD_FAILURE() << "control for " << p.describe() << ": the server should answer the node\n" << r.describe();
}

void PodNetworkTest::expect_drop_flow(const Probe& p) {
  std::vector<std::string> args = {"observe",     "--verdict",  "DROPPED", "--from-ip", p.from.ip, "--to-ip",
                                   p.to.ip,       "--protocol", p.proto,   "--last",    "1",       "-o",
                                   "json"};
  if (p.proto != "icmp") args.insert(args.end(), {"--to-port", std::to_string(p.port)});
  CommandResult r;
  // The agent reads events asynchronously: a drop is reported within milliseconds, so a
  // long deadline only matters on a loaded machine.
  if (wait_until([&] {
        r = agent_->pilus(args);
        return r.ok() && r.out.find("\"DROPPED\"") != std::string::npos;
      }))
    return;
  ADD_FAILURE() << p.describe() << ": the datapath reported no drop of it\n" << r.describe();
}

uint64_t PodNetworkTest::datapath_packets(const std::string& pod_name, const std::string& reason,
                                          const std::string& direction) {
  return agent_->counted_packets(reason, agent_->pod(ns(), pod_name)["status"]["endpointID"].get<uint64_t>(), direction);
}

}  // namespace pilus::e2e
