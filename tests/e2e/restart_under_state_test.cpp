// A crash and restart of the agent while a policy, a Service and an L7 rule are in force
// and traffic runs: allowed flows never stop, denied pairs never get through, a service
// connection keeps its backend, the policy and ipcache maps are never emptied, entries the
// store does not explain are removed afterwards, and L7 connections behave as README says.
#include <signal.h>

#include <atomic>
#include <climits>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

using Clock = std::chrono::steady_clock;

// Entries of a pinned map, read with bpftool (the agent may be down); -1 if unreadable.
long map_entries(const std::string& pin) {
  CommandResult r = run_command({"bpftool", "-j", "map", "dump", "pinned", pin});
  if (!r.ok()) return -1;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_array() ? static_cast<long>(j.size()) : -1;
}

// Polls the entry counts of the policy and ipcache maps until stopped, keeping the lowest
// seen: a restart that flushed or rebuilt a map from empty shows up as a dip.
class MapWatch {
 public:
  explicit MapWatch(std::string bpf_root) : root_(std::move(bpf_root)), thread_([this] { run(); }) {}
  ~MapWatch() { stop(); }
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long min_policy() const { return min_policy_; }
  long min_ipcache() const { return min_ipcache_; }
  long samples() const { return samples_; }

 private:
  void run() {
    while (!done_) {
      long p = map_entries(root_ + "/policy"), i = map_entries(root_ + "/ipcache");
      if (p >= 0) min_policy_ = std::min(min_policy_.load(), p);
      if (i >= 0) min_ipcache_ = std::min(min_ipcache_.load(), i);
      samples_++;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::string root_;
  std::atomic<bool> done_{false};
  std::atomic<long> min_policy_{LONG_MAX}, min_ipcache_{LONG_MAX}, samples_{0};
  std::thread thread_;
};

// `netprobe connect` from one pod to another, again and again until stopped: how many
// attempts were made and how many got an answer.
class RepeatedProbe {
 public:
  RepeatedProbe(Peer from, Peer to, int port)
      : thread_([this, from, to, port] {
          while (!done_) {
            CommandResult r = run_command({"ip", "netns", "exec", from.netns, netprobe_bin(), "connect", "tcp", to.ip,
                                           std::to_string(port), "--timeout-ms", "300"});
            attempts_++;
            if (r.ok()) answered_++;
          }
        }) {}
  ~RepeatedProbe() { stop(); }
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long attempts() const { return attempts_; }
  long answered() const { return answered_; }

 private:
  std::atomic<bool> done_{false};
  std::atomic<long> attempts_{0}, answered_{0};
  std::thread thread_;
};

// Waits until pred() holds; false after a generous deadline (the harness's one wait).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline = 20s) {
  return wait_until(pred, deadline, 50ms);
}

std::string fmt_hex(unsigned byte) {
  char buf[3];
  snprintf(buf, sizeof buf, "%02x", byte & 0xff);
  return buf;
}

// An ipcache key/value as bpftool's hex bytes: {prefixlen 32, ip4 (network order)} -> {identity, flags}.
std::vector<std::string> ipcache_entry_args(const std::string& ip, uint32_t identity) {
  std::vector<std::string> args = {"key", "hex", "20", "00", "00", "00"};
  unsigned a, b, c, d;
  if (sscanf(ip.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) != 4) throw HarnessError("bad address " + ip);
  for (unsigned octet : {a, b, c, d}) args.push_back(fmt_hex(octet));
  args.insert(args.end(), {"value", "hex"});
  for (int i = 0; i < 4; i++) args.push_back(fmt_hex((identity >> (8 * i)) & 0xff));
  args.insert(args.end(), {"01", "00", "00", "00"});  // IPCACHE_F_LOCAL_POD
  return args;
}

class RestartUnderState : public PolicyTest {
 protected:
  std::string service_yaml() const {
    return "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: " + ns() +
           "\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 8000\n    targetPort: " + std::to_string(kTcpPort) +
           "\n    protocol: TCP\n";
  }
  std::string vip() const {
    CommandResult r = agent_->pilus({"get", "services", "web", "-n", ns(), "-o", "json"});
    if (!r.ok()) r = agent_->pilus({"get", "services", "web", "-o", "json"});  // before `get -n`
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!r.ok() || j.is_discarded()) throw HarnessError("service web: " + r.describe());
    const auto& svc = j.contains("items") ? j["items"].at(0) : j;
    return svc["spec"]["clusterIP"];
  }
};

TEST_F(RestartUnderState, TrafficPolicyAndServiceCrossASigkillAndMapsAreNeverEmptied) {
  create({server_in(ns(), "server"), server_in(ns(), "web-1", {{"app", "web"}}),
          server_in(ns(), "web-2", {{"app", "web"}})});
  agent_->apply(join_pods({idle_pod("client"), idle_pod("intruder")}));
  apply_ok(fill(R"yaml(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-from-client
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
)yaml",
                {{"$NS", ns()}}));
  apply_ok(service_yaml());
  const Peer client = at(ns(), "client"), intruder = at(ns(), "intruder"), server = at(ns(), "server");
  const std::string service_ip = vip();
  Matrix before;
  before.allow(client, server, kTcpPort, "tcp").deny(intruder, server, kTcpPort, "tcp");
  verify(before);

  const long policy_before = map_entries(agent_->bpf_root() + "/policy");
  const long ipcache_before = map_entries(agent_->bpf_root() + "/ipcache");
  ASSERT_GT(policy_before, 0);
  ASSERT_GT(ipcache_before, 0);

  // Traffic through the restart: an allowed stream to the server, a stream through the
  // service's per-packet DNAT (ip netns exec: outside pilus's cgroup), the intruder trying.
  Stream allowed(client, server, kTcpPort, 12000);
  Stream via_service(client, {"web", service_ip, ""}, 8000, 12000);
  const std::string to_server = server.ip + ":" + std::to_string(kTcpPort);
  ASSERT_TRUE(eventually([&] { return agent_->tracked_packets(client.ip, to_server) > 0; }))
      << "the allowed stream never started";
  // The service stream is the client's other connection (conntrack sees its backend after DNAT).
  ASSERT_TRUE(eventually([&] { return agent_->tracked_packets(client.ip) > agent_->tracked_packets(client.ip, to_server); }))
      << "the service stream never started";
  RepeatedProbe intruding(intruder, server, kTcpPort);
  MapWatch watch(agent_->bpf_root());

  // While the agent is down, an ipcache entry nobody asked for appears (as a crash in the
  // middle of a delete would leave): the restarted agent must remove it.
  agent_->stop(SIGKILL);
  const std::string stale_ip = server.ip.substr(0, server.ip.rfind('.')) + ".250";
  std::vector<std::string> update = {"bpftool", "map", "update", "pinned", agent_->bpf_root() + "/ipcache"};
  for (auto& a : ipcache_entry_args(stale_ip, 4242)) update.push_back(a);
  CommandResult inserted = run_command(update);
  ASSERT_TRUE(inserted.ok()) << inserted.describe();
  agent_->start();

  nlohmann::json allowed_result = allowed.result();
  nlohmann::json service_result = via_service.result();
  intruding.stop();
  watch.stop();

  EXPECT_EQ(allowed_result["errors"], 0) << allowed_result.dump();
  EXPECT_GT(allowed_result["sent"].get<long>(), 0) << allowed_result.dump();
  EXPECT_EQ(allowed_result["received"], allowed_result["sent"]) << allowed_result.dump();
  // One connection, echoed whole: a backend switch would have reset it.
  EXPECT_EQ(service_result["errors"], 0) << service_result.dump();
  EXPECT_EQ(service_result["received"], service_result["sent"]) << service_result.dump();
  EXPECT_GT(intruding.attempts(), 3) << "the intruder must have tried throughout";
  EXPECT_EQ(intruding.answered(), 0) << "a denied pair got through during the restart";
  EXPECT_GT(watch.samples(), 10);
  EXPECT_GE(watch.min_policy(), policy_before) << "the policy map lost entries during the restart";
  EXPECT_GE(watch.min_ipcache(), ipcache_before) << "the ipcache lost entries during the restart";

  // Afterwards: the stray entry is gone, the rest is as before, and policy still holds.
  // Looked up by key: the map's count also moves with host addresses other agents add or remove.
  auto in_ipcache = [&](const std::string& ip) {
    std::vector<std::string> lookup = {"bpftool", "map", "lookup", "pinned", agent_->bpf_root() + "/ipcache"};
    std::vector<std::string> entry = ipcache_entry_args(ip, 0);
    lookup.insert(lookup.end(), entry.begin(), entry.begin() + 6 + 4);  // "key hex" + 8 key bytes
    return run_command(lookup).ok();
  };
  EXPECT_TRUE(eventually([&] { return !in_ipcache(stale_ip); }))
      << "the ipcache entry for " << stale_ip << " the store does not explain is still there";
  for (const Peer* pod : {&client, &intruder, &server}) EXPECT_TRUE(in_ipcache(pod->ip)) << pod->ip;
  EXPECT_EQ(map_entries(agent_->bpf_root() + "/policy"), policy_before);
  Matrix after;
  after.allow(client, server, kTcpPort, "tcp").deny(intruder, server, kTcpPort, "tcp");
  verify(after);
}

// A kept-alive HTTP/1.1 server answering "ok PATH" to every GET.
const char* kHttpServer = R"py(
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        out = ('ok %s\n' % self.path).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
import socketserver
class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):  # no reverse DNS lookup of 0.0.0.0: a pod has no resolver to ask
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = 'pod', self.server_address[1]
Server(('0.0.0.0', 80), H).serve_forever()
)py";

// One kept-alive connection: a first GET, then (once the file argv[2] exists) a second GET
// on the same connection. Writes "first STATUS" to argv[3] when the first answer came, and
// prints the second's outcome.
const char* kKeptAliveClient = R"py(
import http.client, os, sys, time
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
c.request('GET', '/api/first'); r = c.getresponse(); r.read()
open(sys.argv[3], 'w').write('first %d' % r.status)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
try:
    c.request('GET', '/api/second'); r = c.getresponse(); print('second %d %s' % (r.status, r.read().decode().strip()))
except Exception as e:
    print('second failed: %s' % type(e).__name__)
)py";

// README: while the agent is down, proxied connections end with it and new connections that
// L7 rules cover are refused; once it is back, requests are judged again.
TEST_F(RestartUnderState, L7ConnectionsEndWithTheAgentAndNewOnesAreRefusedUntilItIsBack) {
  std::filesystem::path dir = std::filesystem::path(agent_->state_dir()).parent_path();
  const std::string server_script = (dir / "http_server.py").string(), go = (dir / "go").string(),
                    first = (dir / "first").string();
  std::ofstream(server_script) << kHttpServer;
  agent_->apply(join_pods({{ns(), "web", {{"app", "web"}}, {"python3", server_script}}, idle_pod("client")}));
  ASSERT_TRUE(eventually([&] {
    CommandResult r = agent_->run_in_pod(ns(), "web", {"ss", "-Hltn", "sport = :80"});
    return r.ok() && !r.out.empty();
  })) << "the HTTP server never listened";
  apply_ok(fill(R"yaml(
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web-api-only
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: GET
          path: "/api/.*"
)yaml",
                {{"$NS", ns()}}));
  const Peer client = at(ns(), "client"), web = at(ns(), "web");
  auto curl = [&](const std::string& path) {
    CommandResult r = run_at(client, {"curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                                      "http://" + web.ip + path});
    return r.out;
  };
  ASSERT_EQ(curl("/api/x"), "200");
  ASSERT_EQ(curl("/admin"), "403");

  ChildProcess kept({"ip", "netns", "exec", client.netns, "python3", "-c", kKeptAliveClient, web.ip, go, first});
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(first); })) << "the first request never came back";
  std::string first_status;
  std::getline(std::ifstream(first) >> std::ws, first_status);
  EXPECT_EQ(first_status, "first 200");

  agent_->stop(SIGKILL);
  std::ofstream(go) << "go";
  CommandResult second = kept.wait(30s);
  EXPECT_THAT(second.out, ::testing::HasSubstr("second failed")) << "a proxied connection ends with the agent: "
                                                                 << second.describe();
  // A new connection the L7 rule covers is refused at once (nobody listens on the proxy's
  // port), never handed to the server unjudged.
  CommandResult down = run_at(client, {netprobe_bin(), "connect", "tcp", web.ip, "80", "--timeout-ms", "3000"});
  EXPECT_EQ(down.exit_code, 1) << "refused, not answered and not left hanging: " << down.describe();
  EXPECT_THAT(down.out, ::testing::HasSubstr("refused")) << down.describe();

  agent_->start();
  EXPECT_TRUE(eventually([&] { return curl("/api/y") == "200"; })) << "L7 requests pass again after the restart";
  EXPECT_EQ(curl("/admin"), "403");
}

}  // namespace
}  // namespace pilus::e2e
