// Policy e2e vocabulary: multi-port server pods, parallel probes, streams and the policy CLI views.
#include "e2e/policy_fixture.h"

#include <thread>

namespace pilus::e2e {

namespace {

std::vector<std::string> in_netns(const Peer& where, std::vector<std::string> argv) {
  if (!where.netns.empty()) argv.insert(argv.begin(), {"ip", "netns", "exec", where.netns});
  return argv;
}

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

nlohmann::json parse_or_throw(const CommandResult& r) {
  if (!r.ok()) throw HarnessError(r.describe());
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded()) throw HarnessError("not JSON: " + r.describe());
  return j;
}

}  // namespace

std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values)
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  return text;
}

nlohmann::json trace_step(const nlohmann::json& trace, const std::string& direction) {
  for (const auto& s : trace["steps"])
    if (s.value("direction", "") == direction) return s;
  return nlohmann::json::object();
}

Matrix Matrix::all_answered() const {
  Matrix m;
  m.answered = answered;
  m.answered.insert(m.answered.end(), unanswered.begin(), unanswered.end());
  return m;
}

// ---------------------------------------------------------------- streams

Stream::Stream(const Peer& from, const Peer& to, int port, int duration_ms)
    : what_("stream " + from.name + " -> " + to.name + ":" + std::to_string(port)),
      child_(std::make_unique<ChildProcess>(in_netns(from, {netprobe_bin(), "stream", to.ip, std::to_string(port),
                                                            "--duration-ms", std::to_string(duration_ms),
                                                            "--interval-ms", "20"}))) {}

nlohmann::json Stream::result() {
  CommandResult r = child_->wait(60s);
  // The summary is netprobe's last line, printed whether or not the stream broke.
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  auto j = nlohmann::json::parse(out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1), nullptr,
                                 false);
  if (r.timed_out || j.is_discarded() || !j.is_object()) throw HarnessError(what_ + ": no summary: " + r.describe());
  return j;
}

// ---------------------------------------------------------------- pods and namespaces

void PolicyTest::TearDown() {
  PodNetworkTest::TearDown();
  // The harness only sweeps its own namespace's netns; pods placed in "default" are checked here.
  for (const auto& netns : outside_netns_) {
    if (!netns_exists(netns)) continue;
    ADD_FAILURE() << "pilus cleanup left netns " << netns << " behind (removed by the test)";
    run_command({"ip", "netns", "delete", netns});
  }
}

PodManifest PolicyTest::server_in(const std::string& ns, const std::string& name,
                                  std::map<std::string, std::string> labels, int alt_tcp, int alt_udp) {
  if (labels.empty()) labels = {{"app", name}};
  std::vector<std::pair<int, std::string>> ports = {{kTcpPort, "tcp"}, {kUdpPort, "udp"}, {alt_tcp, "tcp"}, {alt_udp, "udp"}};
  std::string np = shell_quoted(netprobe_bin()) + " serve --name " + shell_quoted(name);
  // Two servers under one shell; a TERM from pilus takes the whole process group down.
  std::string script = "trap 'trap - TERM; kill 0' TERM; " + np + " --tcp " + std::to_string(kTcpPort) + " --udp " +
                       std::to_string(kUdpPort) + " & " + np + " --tcp " + std::to_string(alt_tcp) + " --udp " +
                       std::to_string(alt_udp) + " & wait";
  listening_[ns + "/" + name] = ports;
  return {ns, name, labels, {"/bin/sh", "-c", script}};
}

void PolicyTest::create_namespace(const std::string& name, const std::map<std::string, std::string>& labels) {
  std::string yaml = namespace_yaml(name);
  if (!labels.empty()) {
    yaml += "  labels:\n";
    for (const auto& [k, v] : labels) yaml += "    " + nlohmann::json(k).dump() + ": " + nlohmann::json(v).dump() + "\n";
  }
  apply_ok(yaml);
}

void PolicyTest::create(const std::vector<PodManifest>& pods) {
  for (const auto& p : pods)
    if (!p.ns.starts_with(ns())) outside_netns_.push_back("pl-" + p.ns + "_" + p.name);
  agent_->apply(join_pods(pods));
  for (const auto& p : pods) {
    auto it = listening_.find(p.ns + "/" + p.name);
    if (it == listening_.end()) continue;
    for (const auto& [port, proto] : it->second) agent_->wait_listening(p.ns, p.name, port, proto);
  }
}

Peer PolicyTest::at(const std::string& ns, const std::string& name) const {
  auto p = agent_->pod(ns, name);
  return {name, p["status"]["podIP"].get<std::string>(), p["status"]["netns"].get<std::string>()};
}

CommandResult PolicyTest::apply_ok(const std::string& yaml) {
  CommandResult r = agent_->try_apply(yaml);
  if (!r.ok()) throw HarnessError("pilus apply failed: " + r.describe() + "\nmanifest:\n" + yaml);
  return r;
}

void PolicyTest::delete_ok(const std::string& yaml) { agent_->remove(yaml); }

// ---------------------------------------------------------------- probes

void PolicyTest::verify(const Matrix& m) {
  if (m.answered.empty() && m.unanswered.empty()) ADD_FAILURE() << "an empty matrix verifies nothing";
  struct Running {
    const Probe* probe;
    bool expect_answer;
    std::unique_ptr<ChildProcess> child;
  };
  std::vector<Running> running;
  auto launch = [&](const Probe& p, bool expect_answer) {
    // A refused probe waits less: the answer to an allowed one comes in milliseconds.
    int timeout_ms = expect_answer ? 3000 : 1500;
    std::vector<std::string> argv;
    if (p.proto == "icmp") {
      argv = {"ping", "-n", "-c", "1", "-W", std::to_string(timeout_ms / 1000), p.to.ip};
    } else {
      argv = {netprobe_bin(), "connect", p.proto, p.to.ip, std::to_string(p.port), "--message", "hello-from-" + p.from.name,
              "--timeout-ms", std::to_string(timeout_ms)};
    }
    running.push_back({&p, expect_answer, std::make_unique<ChildProcess>(in_netns(p.from, argv))});
  };
  for (const auto& p : m.answered) launch(p, true);
  for (const auto& p : m.unanswered) launch(p, false);
  // A server some probe of this matrix must reach is its own positive control.
  auto answered_elsewhere = [&](const Probe& p) {
    for (const auto& a : m.answered)
      if (a.to.ip == p.to.ip && a.proto == p.proto && (p.proto == "icmp" || a.port == p.port)) return true;
    return false;
  };
  for (auto& r : running) {
    CommandResult result = r.child->wait(15s);
    const Probe& p = *r.probe;
    if (!r.expect_answer) {
      expect_dropped(p, result, answered_elsewhere(p));
      continue;
    }
    bool answered = result.ok();
    if (answered && p.proto != "icmp")
      answered = result.out.find(p.to.name + ": hello-from-" + p.from.name) != std::string::npos;
    if (!answered) ADD_FAILURE() << p.describe() << " should be answered\n" << result.describe();
  }
}

// ---------------------------------------------------------------- CLI views

nlohmann::json PolicyTest::policies() { return parse_or_throw(agent_->pilus({"get", "policies", "-A", "-o", "json"})).at("items"); }

nlohmann::json PolicyTest::trace(const std::string& from, const std::string& to, const std::string& dport) {
  return parse_or_throw(agent_->pilus({"policy", "trace", "--from", from, "--to", to, "--dport", dport, "-o", "json"}));
}

nlohmann::json PolicyTest::bpf_policy(const std::string& pod) {
  return parse_or_throw(agent_->pilus({"bpf", "policy", "get", pod, "-o", "json"}));
}

nlohmann::json PolicyTest::status() { return parse_or_throw(agent_->pilus({"status", "-o", "json"})); }

uint64_t PolicyTest::drops(const std::string& ns, const std::string& name, const std::string& reason,
                           const std::string& direction) {
  return agent_->counted_packets(reason, agent_->pod(ns, name)["status"]["endpointID"].get<uint64_t>(), direction);
}

}  // namespace pilus::e2e
