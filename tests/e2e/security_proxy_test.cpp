// Regression tests for the L7 proxy holes an outside probe found (issue 12), each with the
// probe's own traffic from real pods and a positive control on the same server, so a deny is
// proven rather than assumed:
//   1. an egress HTTP rule must not bypass the server's ingress policy (proxy and datapath);
//   2. paths are judged (and forwarded) normalized, what cannot be normalized is refused;
//   3. a policy change reaches requests on open proxied connections;
//   4. one pod's connections cannot lock the others out, running out of descriptors backs off;
//   5. HTTP/1.1 framing the server could read otherwise is refused.
#include <gmock/gmock.h>
#include <sys/resource.h>

#include <arpa/inet.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "abi/proxy.h"
#include "e2e/policy_fixture.h"
#include "example_manifests.h"

namespace pilus::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// An HTTP/1.1 server answering every request with "NAME METHOD PATH BODY_LENGTH".
const char* kServerScript = R"py(
import http.server, sys
port, name = int(sys.argv[1]), sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def answer(self):
        body = b''
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            while True:
                size = int(self.rfile.readline().split(b';')[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            n = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(n) if n else b''
        out = ('%s %s %s %d\n' % (name, self.command, self.path, len(body))).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass
import socketserver
class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):  # no reverse DNS lookup of 0.0.0.0: a pod has no resolver to ask
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = 'pod', self.server_address[1]
Server(('0.0.0.0', port), Handler).serve_forever()
)py";

// Raw requests, each on a fresh connection: argv = ip port mark bind timeout request...
// (mark 0: none; bind "": any). Prints per request the status line, body, error and
// whether the socket mark could be set.
const char* kRawScript = R"py(
import json, socket, struct, sys
ip, port, mark, bind, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
out = []
for raw in sys.argv[6:]:
    r = {'status': '', 'body': '', 'error': '', 'marked': False, 'responses': 0}
    data = b''
    try:
        s = socket.socket()
        if mark:
            try:
                s.setsockopt(socket.SOL_SOCKET, 36, struct.pack('I', mark))  # SO_MARK, unsigned
                r['marked'] = True
            except OSError as e:
                r['mark_error'] = str(e)
        if bind:
            s.bind((bind, 0))
        s.settimeout(timeout)
        s.connect((ip, port))
        s.sendall(raw.encode('latin-1'))
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except Exception as e:
        r['error'] = 'timeout' if isinstance(e, socket.timeout) else type(e).__name__
    head, _, body = data.partition(b'\r\n\r\n')
    r['status'] = head.split(b'\r\n')[0].decode(errors='replace')
    r['head'] = head.decode(errors='replace')
    r['body'] = body.decode(errors='replace')
    r['responses'] = data.count(b'HTTP/1.1 ')
    out.append(r)
print(json.dumps(out))
)py";

// One kept-alive connection: two requests, then (once the go file exists) two more.
const char* kKeepAliveAcrossPolicyChange = R"py(
import http.client, json, os, sys, time
ip, go = sys.argv[1], sys.argv[2]
c = http.client.HTTPConnection(ip, 80, timeout=5)
out = []
def request(path):
    try:
        c.request('GET', path)
        r = c.getresponse()
        out.append({'path': path, 'status': r.status, 'body': r.read().decode(),
                    'connection': r.getheader('Connection', ''), 'port': c.sock.getsockname()[1] if c.sock else 0})
    except Exception as e:
        out.append({'path': path, 'error': type(e).__name__})
request('/admin')
request('/api/users')
c.auto_open = 0  # never reconnect behind our back: the same connection or nothing
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
request('/admin')
request('/api/users')
print(json.dumps(out))
)py";

// Opens N connections and holds them, idle, until the go file exists; prints how many the
// peer closed within the first second and how many it closed at all.
const char* kHoldConnections = R"py(
import json, os, select, socket, sys, time
ip, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
socks, failed = [], 0
for i in range(n):
    try:
        s = socket.create_connection((ip, 80), timeout=5)
        socks.append(s)
    except OSError:
        failed += 1
def closed_ones():
    gone = 0
    for s in socks:
        r, _, _ = select.select([s], [], [], 0)
        if r:
            try:
                if s.recv(1, socket.MSG_PEEK) == b'':
                    gone += 1
            except OSError:
                gone += 1
    return gone
time.sleep(1)
early = closed_ones()
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
print(json.dumps({'opened': len(socks), 'failed': failed, 'closed_early': early}))
)py";

struct Answer {
  std::string status, head, body, error;
  bool marked = false;
  int responses = 0;
};

class SecurityProxy : public PolicyTest {
 protected:
  void SetUp() override {
    PolicyTest::SetUp();
    dir_ = std::filesystem::path(agent().state_dir()).parent_path();
    std::ofstream(dir_ / "http_server.py") << kServerScript;
  }

  PodManifest http_server(const std::string& name, std::map<std::string, std::string> labels) const {
    return {ns(), name, labels, {"python3", (dir_ / "http_server.py").string(), "80", name}};
  }

  // The servers "secret" (app=secret) and "backend" (app=backend), and idle clients.
  void create_http_pods(const std::vector<PodManifest>& clients) {
    std::vector<PodManifest> pods = {http_server("secret", {{"app", "secret"}}),
                                     http_server("backend", {{"app", "backend"}})};
    pods.insert(pods.end(), clients.begin(), clients.end());
    agent().apply(join_pods(pods));
    for (const char* server : {"secret", "backend"})
      for (int attempt = 0;; attempt++) {
        CommandResult r = agent().run_in_pod(ns(), server, {"ss", "-Hltn", "sport = :80"});
        if (r.ok() && !r.out.empty()) break;
        if (attempt > 150) throw HarnessError(std::string(server) + " never listened");
        std::this_thread::sleep_for(100ms);
      }
  }

  std::vector<Answer> raw(const Peer& from, const std::string& ip, const std::vector<std::string>& requests,
                          uint32_t mark = 0, const std::string& bind = "", double timeout_s = 5) {
    std::vector<std::string> argv = {"python3", "-c", kRawScript, ip, "80", std::to_string(mark), bind,
                                     std::to_string(timeout_s)};
    argv.insert(argv.end(), requests.begin(), requests.end());
    CommandResult r = run_at(from, argv, 120s);
    if (!r.ok()) throw HarnessError("raw request script failed: " + r.describe());
    std::vector<Answer> out;
    for (const auto& j : nlohmann::json::parse(r.out))
      out.push_back({j["status"], j["head"], j["body"], j["error"], j["marked"], j["responses"]});
    return out;
  }
  // One request "METHOD PATH" with Connection: close (extra header lines may follow).
  static std::string request(const std::string& path, const std::string& extra = "", const std::string& host = "s") {
    return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "Connection: close\r\n\r\n";
  }
  Answer get(const Peer& from, const Peer& to, const std::string& path) { return raw(from, to.ip, {request(path)})[0]; }

  // The mark the proxy sets on its upstream socket for a client (abi/proxy.h).
  static uint32_t upstream_mark(const std::string& client_ip) {
    in_addr a{};
    inet_pton(AF_INET, client_ip.c_str(), &a);
    return MARK_PROXY_UPSTREAM_MAGIC | (ntohl(a.s_addr) & MARK_PROXY_UPSTREAM_ADDR_MASK);
  }

  std::string allow_api_only() const {
    std::string yaml = pilus::testing::example_manifest("policies/allow-api-only.yaml");
    const std::string name_line = "  name: allow-api-only\n";
    size_t at = yaml.find(name_line);
    if (at == std::string::npos) throw HarnessError("allow-api-only.yaml has no '" + name_line + "'");
    return yaml.insert(at + name_line.size(), "  namespace: " + ns() + "\n");
  }
  // secret admits app=backend only (all ports, no L7).
  std::string secret_ingress() const {
    return fill(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: secret-from-backend
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: secret
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: backend
)yaml",
                {{"$NS", ns()}});
  }
  // The probe's own policy: the attacker may GET anything from any pod on port 80.
  std::string attacker_egress() const {
    return fill(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: attacker-egress-http
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: attacker
  egress:
  - toEndpoints:
    - {}
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: GET
          path: "/.*"
)yaml",
                {{"$NS", ns()}});
  }

  std::vector<nlohmann::json> http_flows(std::vector<std::string> filters) {
    std::vector<std::string> args = {"observe", "--all", "-o", "json", "--protocol", "http"};
    args.insert(args.end(), filters.begin(), filters.end());
    CommandResult r = agent().pilus(args);
    if (r.exit_code != 0) throw HarnessError(r.describe());
    std::vector<nlohmann::json> flows;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) {
        auto j = nlohmann::json::parse(line);
        if (j.contains("flow")) flows.push_back(j["flow"]);
      }
    return flows;
  }

  std::string metrics() { return run_command({"curl", "-s", "-m", "10", "http://" + agent().metrics_addr() + "/metrics"}).out; }

  std::filesystem::path dir_;
};

// ---------------------------------------------------------------- 1. both ends' policy

TEST_F(SecurityProxy, EgressHttpRuleDoesNotBypassTheServersIngress) {
  create_http_pods({idle_pod("attacker"), idle_pod("frontend")});
  apply_ok(secret_ingress() + "---\n" + allow_api_only() + "---\n" + attacker_egress());

  // Positive controls: the admitted clients get through, on the same servers and port.
  Answer control = get(pod("backend"), pod("secret"), "/anything");
  EXPECT_EQ(control.status, "HTTP/1.1 200 OK") << control.error;
  EXPECT_EQ(control.body, "secret GET /anything 0\n");
  Answer api = get(pod("frontend"), pod("backend"), "/api/users");
  EXPECT_EQ(api.status, "HTTP/1.1 200 OK") << api.error;

  // The probe: the attacker's egress rule sends it to the proxy, but neither server admits it.
  Answer secret = get(pod("attacker"), pod("secret"), "/anything");
  EXPECT_THAT(secret.status, StartsWith("HTTP/1.1 403")) << secret.error;
  EXPECT_THAT(secret.body, Not(HasSubstr("secret GET")));
  EXPECT_THAT(secret.head, HasSubstr("Connection: close")) << "no request on it can pass: closed";
  Answer admin = get(pod("attacker"), pod("backend"), "/admin");
  EXPECT_THAT(admin.status, StartsWith("HTTP/1.1 403")) << admin.error;
  Answer admin_api = get(pod("attacker"), pod("backend"), "/api/users");
  EXPECT_THAT(admin_api.status, StartsWith("HTTP/1.1 403")) << "backend admits frontend only: " << admin_api.error;

  // policy trace and the proxy agree.
  nlohmann::json t = trace(ns() + "/attacker", ns() + "/secret", "80/tcp");
  EXPECT_EQ(t["verdict"], "DENIED") << t.dump(2);
  EXPECT_EQ(trace_step(t, "ingress")["verdict"], "DENIED") << t.dump(2);

  // The denials are L7 flows from the attacker, dropped.
  size_t dropped = 0;
  for (const auto& f : http_flows({"--from-pod", ns() + "/attacker", "--verdict", "DROPPED"}))
    if (f["l7"]["type"] == "REQUEST") dropped++;
  EXPECT_EQ(dropped, 3u);
}

// The datapath is the authority: the upstream leg, marked with a client's address, is judged
// as that client. Driven from the node with the proxy's mark, as the proxy's socket would be.
TEST_F(SecurityProxy, DatapathJudgesTheProxysUpstreamLegAsItsClient) {
  create_http_pods({idle_pod("attacker")});
  apply_ok(secret_ingress());
  const std::string proxy_ip = agent().router_ip();
  Answer as_backend = raw(node(), pod("secret").ip, {request("/x")}, upstream_mark(pod("backend").ip), proxy_ip)[0];
  EXPECT_TRUE(as_backend.marked);
  EXPECT_EQ(as_backend.status, "HTTP/1.1 200 OK") << "marked as an admitted client: " << as_backend.error;
  Answer as_node = raw(node(), pod("secret").ip, {request("/x")}, 0, proxy_ip)[0];
  EXPECT_EQ(as_node.status, "HTTP/1.1 200 OK") << "unmarked, the node itself: " << as_node.error;

  uint64_t before = drops(ns(), "secret", "POLICY_DENIED", "ingress");
  Answer as_attacker = raw(node(), pod("secret").ip, {request("/x")}, upstream_mark(pod("attacker").ip), proxy_ip, 2)[0];
  EXPECT_TRUE(as_attacker.marked);
  EXPECT_EQ(as_attacker.status, "") << "the SYN is dropped";
  EXPECT_EQ(as_attacker.error, "timeout");
  EXPECT_GT(drops(ns(), "secret", "POLICY_DENIED", "ingress"), before) << "counted as a policy drop";
}

// A pod cannot forge the mark: the veth clears skb->mark leaving its namespace, and from_pod
// judges the packet by its (anti-spoofed) source anyway.
TEST_F(SecurityProxy, PodCannotForgeTheUpstreamMark) {
  create_http_pods({idle_pod("intruder")});
  apply_ok(secret_ingress());
  Answer control = get(pod("backend"), pod("secret"), "/x");
  EXPECT_EQ(control.status, "HTTP/1.1 200 OK") << control.error;
  Answer forged = raw(pod("intruder"), pod("secret").ip, {request("/x")}, upstream_mark(pod("backend").ip), "", 2)[0];
  EXPECT_TRUE(forged.marked) << "the probe runs as root in the pod's namespace: it can set a mark";
  EXPECT_EQ(forged.status, "");
  EXPECT_EQ(forged.error, "timeout");
}

// ---------------------------------------------------------------- 2. normalized paths

TEST_F(SecurityProxy, PathTricksAreJudgedAsTheServerWouldReadThem) {
  create_http_pods({idle_pod("frontend")});
  apply_ok(allow_api_only());
  std::vector<Answer> a = raw(pod("frontend"), pod("backend").ip,
                              {request("/api/users"), request("/api/./users//"), request("/api/../admin"),
                               request("/api/%2e%2e/admin"), request("/api/..%2fadmin"), request("/api/..\\admin"),
                               request("/api/..;/admin"), request("/admin", "", "x/api/users?")});
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a[0].status, "HTTP/1.1 200 OK") << "positive control: " << a[0].error;
  EXPECT_EQ(a[0].body, "backend GET /api/users 0\n");
  EXPECT_EQ(a[1].status, "HTTP/1.1 200 OK");
  EXPECT_EQ(a[1].body, "backend GET /api/users/ 0\n") << "the server gets the path that was judged";
  for (int i : {2, 3}) EXPECT_THAT(a[i].status, StartsWith("HTTP/1.1 403")) << i << ": judged as /admin";
  for (int i : {4, 5, 6, 7}) {
    EXPECT_THAT(a[i].status, StartsWith("HTTP/1.1 400")) << i << ": cannot be normalized safely";
    EXPECT_THAT(a[i].body, Not(HasSubstr("backend GET"))) << i;
  }
  // Every denied request is reported under the path that was judged.
  size_t denied = 0;
  for (const auto& f : http_flows({"--to-pod", ns() + "/backend", "--verdict", "DROPPED"})) {
    if (f["l7"]["type"] != "REQUEST") continue;
    denied++;
    EXPECT_EQ(f["l7"]["http"]["url"], "http://s/admin") << f.dump();
  }
  EXPECT_EQ(denied, 2u);
  EXPECT_GE(status()["proxy"]["invalidTargets"].get<int>(), 4);
}

// ---------------------------------------------------------------- 3. policy changes

TEST_F(SecurityProxy, ReplacedPolicyReachesAnOpenProxiedConnection) {
  create_http_pods({idle_pod("frontend"), idle_pod("other")});
  apply_ok(allow_api_only());
  std::filesystem::path go = dir_ / "policy-replaced";
  ChildProcess client({"ip", "netns", "exec", pod("frontend").netns, "python3", "-c", kKeepAliveAcrossPolicyChange,
                       pod("backend").ip, go.string()});
  // Once its first two requests are through (two L7 request flows), replace the policy by one
  // that admits "other" instead of the frontend.
  for (int attempt = 0; http_flows({"--from-pod", ns() + "/frontend"}).size() < 2; attempt++) {
    if (attempt > 300 || client.exited()) break;
    std::this_thread::sleep_for(100ms);
  }
  std::string replaced = allow_api_only();
  size_t at = replaced.find("app: frontend");
  ASSERT_NE(at, std::string::npos);
  apply_ok(replaced.replace(at, 13, "app: other"));
  std::ofstream(go) << "go\n";
  CommandResult r = client.wait(90s);
  ASSERT_TRUE(r.ok()) << r.describe();
  nlohmann::json out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out.size(), 4u) << out.dump();
  EXPECT_EQ(out[0]["status"], 403) << out.dump();
  EXPECT_EQ(out[1]["status"], 200) << out.dump();
  EXPECT_EQ(out[1]["port"], out[0]["port"]) << "one connection: " << out.dump();
  EXPECT_EQ(out[2]["status"], 403) << "the new policy admits nobody from here: " << out.dump();
  // The script never reconnects (auto_open = 0): the third answer came on the first connection.
  EXPECT_EQ(out[2]["connection"], "close") << out.dump();
  EXPECT_TRUE(out[3].contains("error")) << "and the connection is closed: " << out.dump();
  // Positive control: the newly admitted client passes.
  Answer other = get(pod("other"), pod("backend"), "/api/users");
  EXPECT_EQ(other.status, "HTTP/1.1 200 OK") << other.error;
}

// ---------------------------------------------------------------- 5. framing

TEST_F(SecurityProxy, FramingTheServerCouldReadOtherwiseIsRefusedAndClosed) {
  create_http_pods({idle_pod("frontend")});
  apply_ok(allow_api_only());
  const std::string next = "GET /api/next HTTP/1.1\r\nHost: s\r\n\r\n";  // must never be answered
  std::vector<Answer> a = raw(
      pod("frontend"), pod("backend").ip,
      {"GET /api/a HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       "GET /api/a HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello" + next,
       "GET /api/a HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: xchunked\r\n\r\n" + next,
       "GET /api/a HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + next});
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].status, "HTTP/1.1 200 OK") << "positive control: " << a[0].error;
  EXPECT_EQ(a[0].body, "backend GET /api/a 5\n");
  EXPECT_THAT(a[1].status, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(a[2].status, StartsWith("HTTP/1.1 501"));
  EXPECT_THAT(a[3].status, StartsWith("HTTP/1.1 501"));
  for (int i : {1, 2, 3}) {
    EXPECT_THAT(a[i].body, Not(HasSubstr("backend"))) << i << ": never forwarded";
    EXPECT_EQ(a[i].responses, 1) << i << ": the connection is closed after the refusal";
  }
  EXPECT_EQ(status()["proxy"]["invalidFraming"].get<int>(), 3);
}

// ---------------------------------------------------------------- 4. exhaustion

class SecurityProxyCapped : public SecurityProxy {
 protected:
  TestAgent::Options agent_options() const override {
    TestAgent::Options o;
    o.agent_args = {"--proxy-max-connections-per-identity", "16"};
    return o;
  }
};

TEST_F(SecurityProxyCapped, OnePodsConnectionsCannotLockOthersOut) {
  // The hog is admitted like the frontend (app=frontend) but is its own identity.
  create_http_pods({idle_pod("frontend"), idle_pod("hog", {{"app", "frontend"}, {"role", "hog"}})});
  apply_ok(allow_api_only());
  std::filesystem::path go = dir_ / "hog-done";
  ChildProcess hog({"ip", "netns", "exec", pod("hog").netns, "python3", "-c", kHoldConnections, pod("backend").ip,
                    "40", go.string()});
  for (int attempt = 0; status()["proxy"]["rejectedPerIdentity"].get<int>() < 24; attempt++) {
    ASSERT_LT(attempt, 300) << status()["proxy"].dump();
    ASSERT_FALSE(hog.exited());
    std::this_thread::sleep_for(100ms);
  }
  // While the hog holds its share, everyone else is served.
  Answer other = get(pod("frontend"), pod("backend"), "/api/users");
  EXPECT_EQ(other.status, "HTTP/1.1 200 OK") << other.error;
  std::ofstream(go) << "go\n";
  CommandResult r = hog.wait(90s);
  ASSERT_TRUE(r.ok()) << r.describe();
  nlohmann::json h = nlohmann::json::parse(r.out);
  EXPECT_EQ(h["opened"], 40) << h.dump();
  EXPECT_EQ(h["closed_early"], 24) << "16 held, the rest closed at once: " << h.dump();
  EXPECT_EQ(status()["proxy"]["rejectedPerIdentity"].get<int>(), 24);
  EXPECT_THAT(metrics(), HasSubstr("pilus_proxy_errors_total{reason=\"too_many_connections_per_identity\"} 24"));
}

// With the agent out of descriptors, the proxy's accept loop waits and logs once in a while
// instead of spinning and flooding the log (the probe saw 7.25 million lines in 25 s).
TEST_F(SecurityProxy, OutOfDescriptorsTheProxyBacksOffAndRecovers) {
  create_http_pods({idle_pod("frontend"), idle_pod("hog", {{"app", "frontend"}, {"role", "hog"}})});
  apply_ok(allow_api_only());
  ASSERT_EQ(get(pod("frontend"), pod("backend"), "/api/users").status, "HTTP/1.1 200 OK");

  // Leave the agent a few descriptors more than it has open.
  size_t open_fds = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(agent().pid()) + "/fd"))
    open_fds++;
  rlimit old{};
  ASSERT_EQ(prlimit(agent().pid(), RLIMIT_NOFILE, nullptr, &old), 0);
  rlimit tight{open_fds + 12, old.rlim_max};
  ASSERT_EQ(prlimit(agent().pid(), RLIMIT_NOFILE, &tight, nullptr), 0);
  struct Restore {
    pid_t pid;
    rlimit old;
    ~Restore() { prlimit(pid, RLIMIT_NOFILE, &old, nullptr); }
  } restore{agent().pid(), old};
  size_t log_before = agent().stderr_log().size() + agent().stdout_log().size();

  std::filesystem::path go = dir_ / "hog-done";
  ChildProcess hog({"ip", "netns", "exec", pod("hog").netns, "python3", "-c", kHoldConnections, pod("backend").ip,
                    "60", go.string()});
  // Hold them a few seconds: a spinning accept loop would log and count millions of failures.
  std::this_thread::sleep_for(4s);
  std::ofstream(go) << "go\n";
  CommandResult r = hog.wait(90s);
  ASSERT_TRUE(r.ok()) << r.describe();
  prlimit(agent().pid(), RLIMIT_NOFILE, &old, nullptr);

  // Recovered: everyone is served again (positive control), and the failures were few.
  Answer after;
  for (int attempt = 0; attempt < 50; attempt++) {
    after = get(pod("frontend"), pod("backend"), "/api/users");
    if (after.status == "HTTP/1.1 200 OK") break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(after.status, "HTTP/1.1 200 OK") << after.error;
  auto proxy = status()["proxy"];
  EXPECT_GE(proxy["descriptorsExhausted"].get<int>(), 1) << proxy.dump();
  EXPECT_LT(proxy["descriptorsExhausted"].get<int>(), 200) << "backed off, did not spin: " << proxy.dump();
  std::string logs = agent().stderr_log() + agent().stdout_log();
  std::string added = logs.substr(std::min(log_before, logs.size()));
  size_t accept_lines = 0;
  for (size_t at = added.find("proxy: accept"); at != std::string::npos; at = added.find("proxy: accept", at + 1))
    accept_lines++;
  EXPECT_GE(accept_lines, 1u);
  EXPECT_LE(accept_lines, 3u) << "rate-limited";
}

}  // namespace
}  // namespace pilus::e2e
