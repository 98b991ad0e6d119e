// L7 HTTP policy end to end: an HTTP server pod and a client pod, the seed's allow-api-only
// and ddos-protection policies enforced per request by the agent's transparent proxy,
// L7 flows and metrics, keep-alive connections mixing allowed and denied requests, and
// hostile clients that must not stall anyone else.
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "e2e/policy_fixture.h"
#include "example_manifests.h"

namespace pilus::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// An HTTP/1.1 server that keeps connections alive and answers every method with
// "NAME METHOD PATH BODY_LENGTH", so a reply proves which request reached it.
const char* kServerScript = R"py(
import http.server, sys
port, name = int(sys.argv[1]), sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True  # headers and body are two writes
    def answer(self):
        body = b''
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            while True:
                size = int(self.rfile.readline().split(b';')[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
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
        if self.command != 'HEAD':
            self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer
    def log_message(self, *args):
        pass
import socketserver
class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):  # no reverse DNS lookup of 0.0.0.0: a pod has no resolver to ask
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = 'pod', self.server_address[1]
Server(('0.0.0.0', port), Handler).serve_forever()
)py";

// Several requests on one kept-alive connection; prints each status, body and the local port.
const char* kKeepAliveScript = R"py(
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
out = []
for method, path in [('GET', '/api/users'), ('POST', '/api/users'), ('GET', '/admin'), ('GET', '/api/items')]:
    c.request(method, path, body=b'x' if method == 'POST' else None)
    r = c.getresponse()
    body = r.read().decode()
    out.append({'method': method, 'path': path, 'status': r.status, 'body': body, 'port': c.sock.getsockname()[1]})
print(json.dumps(out))
)py";

// Hostile and unusual clients against the proxy, each reported by the first line it got back.
const char* kHostileScript = R"py(
import json, re, socket, sys, time
ip = sys.argv[1]
res = {}
def conn():
    return socket.create_connection((ip, 80), timeout=5)
def read_all(s, timeout=5):
    s.settimeout(timeout)
    data = b''
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (socket.timeout, ConnectionResetError):
        pass
    return data
def first_line(data):
    return data.split(b'\r\n')[0].decode(errors='replace')
def send(s, data):
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass

slow = conn()
slow.sendall(b'GET /api/users HTTP/1.1\r\nHost: x\r\n')
slow_started = time.time()

t = time.time()
s = conn(); send(s, b'GET /api/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
res['during_slow'] = first_line(read_all(s)); res['during_slow_seconds'] = time.time() - t

s = conn(); send(s, b'THIS IS NOT HTTP\r\n\r\n'); res['malformed'] = first_line(read_all(s))
s = conn(); send(s, b'GET /api/users HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * 100000 + b'\r\n\r\n')
res['oversized'] = first_line(read_all(s))
s = conn(); send(s, b'GET /api/users HTTP/1.1\r\nHost: x\r\nX-Large: ' + b'b' * 20000 + b'\r\nConnection: close\r\n\r\n')
res['large_header'] = first_line(read_all(s))

s = conn()
send(s, b'GET /api/a HTTP/1.1\r\nHost: x\r\n\r\nPOST /api/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc'
        b'GET /api/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
data = read_all(s)
res['pipelined'] = [m.decode() for m in re.findall(rb'HTTP/1\.1 \d{3} [A-Za-z ]+', data)]
res['pipelined_bodies'] = [m.decode() for m in re.findall(rb'server [A-Z]+ \S+ \d+', data)]

s = conn()
send(s, b'GET /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n')
data = read_all(s)
res['chunked'] = first_line(data); res['chunked_body'] = data.split(b'\r\n\r\n', 1)[-1].decode()

s = conn()
send(s, b'GET /api/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
s.settimeout(3)
res['expect_interim'] = first_line(s.recv(4096))
send(s, b'data')
data = read_all(s)
res['expect_final'] = first_line(data); res['expect_body'] = data.split(b'\r\n\r\n', 1)[-1].decode()

s = conn(); send(s, b'POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n')
res['expect_denied'] = first_line(read_all(s))

s = conn(); send(s, b'GET /api/users HTTP/1.1\r\nHost: x\r\n'); s.close()  # abrupt close mid-request

s = conn(); send(s, b'GET /api/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'); res['after'] = first_line(read_all(s))

res['slow'] = first_line(read_all(slow, 20)); res['slow_seconds'] = time.time() - slow_started
print(json.dumps(res))
)py";

class L7Policy : public PolicyTest {
 protected:
  void SetUp() override {
    PolicyTest::SetUp();
    std::filesystem::path dir = std::filesystem::path(agent().state_dir()).parent_path();
    server_script_ = (dir / "http_server.py").string();
    std::ofstream(server_script_) << kServerScript;
  }

  // An HTTP server on `port` (label app=backend) and an idle client pod (app=frontend).
  void create_http_pods(int port = 80) {
    PodManifest server{ns(), "backend", {{"app", "backend"}}, {"python3", server_script_, std::to_string(port), "server"}};
    PodManifest client = idle_pod("frontend", {{"app", "frontend"}});
    agent().apply(join_pods({server, client}));
    agent().wait_listening(ns(), "backend", port);
  }

  struct Reply {
    int status = 0;
    std::string body;
  };
  // One request with curl from the client pod.
  Reply curl(const std::string& method, const std::string& path, int port = 80) {
    return curl_url(method, "http://" + pod("backend").ip + ":" + std::to_string(port) + path);
  }
  // in_cgroup: curl runs in pilus's cgroup, as a pod's own processes do, so a service VIP is
  // translated at connect() by the socket load balancer; otherwise per packet by from_pod.
  Reply curl_url(const std::string& method, const std::string& url, bool in_cgroup = false) {
    std::vector<std::string> argv = {"curl", "-s", "-m", "5", "-X", method, "-w", "\n%{http_code}", url};
    CommandResult r;
    if (in_cgroup) {
      std::string line = "exec ip netns exec '" + pod("frontend").netns + "'";
      for (const auto& a : argv) line += " '" + a + "'";
      r = run_command({"sh", "-c", "echo $$ > '" + agent().cgroup_dir() + "/cgroup.procs' && " + line}, "", 30s);
    } else {
      r = run_at(pod("frontend"), argv);
    }
    Reply reply;
    size_t nl = r.out.rfind('\n');
    if (nl == std::string::npos) return reply;
    reply.body = r.out.substr(0, nl);
    reply.status = std::atoi(r.out.c_str() + nl + 1);
    return reply;
  }

  nlohmann::json python_in_client(const char* script, std::chrono::milliseconds timeout = 30s) {
    CommandResult r = run_at(pod("frontend"), {"python3", "-c", script, pod("backend").ip}, timeout);
    if (!r.ok()) throw HarnessError("client script failed: " + r.describe());
    return nlohmann::json::parse(r.out);
  }

  std::vector<nlohmann::json> http_flows(std::vector<std::string> filters = {}) {
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

  // The seed's policy (examples/policies/allow-api-only.yaml), placed in the test's namespace.
  std::string allow_api_only() const {
    std::string yaml = pilus::testing::example_manifest("policies/allow-api-only.yaml");
    const std::string name_line = "  name: allow-api-only\n";
    size_t at = yaml.find(name_line);
    if (at == std::string::npos) throw HarnessError("allow-api-only.yaml has no '" + name_line + "'");
    return yaml.insert(at + name_line.size(), "  namespace: " + ns() + "\n");
  }
  // The same allow at L4 only: port 80 from the frontend, its HTTP rules cut off.
  std::string allow_api_only_without_http_rules() const {
    std::string yaml = allow_api_only();
    size_t rules = yaml.find("      rules:");
    if (rules == std::string::npos) throw HarnessError("allow-api-only.yaml has no rules block");
    return yaml.substr(0, rules);
  }

  std::string server_script_;
};

TEST_F(L7Policy, AllowApiOnlyLetsGetApiThroughAndAnswersEverythingElseWith403) {
  create_http_pods();
  EXPECT_EQ(curl("POST", "/api/users").status, 200) << "without a policy everything passes";
  apply_ok(allow_api_only());

  Reply get = curl("GET", "/api/users");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "server GET /api/users 0\n");
  Reply post = curl("POST", "/api/users");
  EXPECT_EQ(post.status, 403);
  EXPECT_EQ(post.body, "Access denied");
  Reply admin = curl("GET", "/admin");
  EXPECT_EQ(admin.status, 403);
  EXPECT_EQ(admin.body, "Access denied");

  // The flows say what happened, with Hubble's fields.
  auto flows = http_flows({"--to-pod", ns() + "/backend"});
  bool get_request = false, post_dropped = false;
  for (const auto& f : flows) {
    const auto& http = f["l7"]["http"];
    EXPECT_EQ(f["Type"], "L7") << f.dump();
    EXPECT_EQ(f["source"]["pod_name"], "frontend") << f.dump();
    EXPECT_EQ(f["traffic_direction"], "INGRESS") << f.dump();
    if (http["method"] == "GET" && http["url"] == "http://" + pod("backend").ip + "/api/users" &&
        f["l7"]["type"] == "REQUEST" && f["verdict"] == "FORWARDED") {
      EXPECT_EQ(http["protocol"], "HTTP/1.1");
      get_request = true;
    }
    if (http["method"] == "POST" && f["verdict"] == "DROPPED") {
      EXPECT_EQ(f["drop_reason_desc"], "POLICY_DENIED") << f.dump();
      post_dropped = true;
    }
  }
  EXPECT_TRUE(get_request) << "no forwarded GET /api/users request flow";
  EXPECT_TRUE(post_dropped) << "no dropped POST request flow";

  // Responses carry the status and latency; the filters select by method, path and status.
  auto ok = http_flows({"--http-status", "200", "--http-path", "^/api/users$"});
  ASSERT_FALSE(ok.empty());
  EXPECT_EQ(ok.back()["l7"]["type"], "RESPONSE");
  EXPECT_EQ(ok.back()["source"]["pod_name"], "backend") << "a response flows from the server";
  EXPECT_GT(ok.back()["l7"]["latency_ns"].get<uint64_t>(), 0u);
  auto denied = http_flows({"--http-status", "403"});
  EXPECT_EQ(denied.size(), 2u) << "POST /api/users and GET /admin";
  EXPECT_EQ(http_flows({"--http-method", "post", "--verdict", "DROPPED"}).size(), 2u) << "request and response";

  CommandResult compact = agent().pilus({"observe", "--all", "--protocol", "http", "--http-method", "GET"});
  EXPECT_THAT(compact.out, HasSubstr("http-request FORWARDED (HTTP/1.1 GET http://" + pod("backend").ip + "/api/users)"));

  // Status and metrics count what the proxy did.
  auto proxy = status()["proxy"];
  EXPECT_EQ(proxy["state"], "running");
  EXPECT_GE(proxy["redirects"].get<int>(), 3);
  EXPECT_EQ(proxy["denied"].get<int>(), 2);
  EXPECT_GE(proxy["redirectEntries"].get<int>(), 1);
  CommandResult metrics = run_command({"curl", "-s", "http://" + agent().metrics_addr() + "/metrics"});
  EXPECT_THAT(metrics.out, HasSubstr("cilium_policy_l7_total{rule=\"denied\",proxy_type=\"http\"} 2"));
  EXPECT_THAT(metrics.out, HasSubstr("hubble_http_responses_total{method=\"GET\",status=\"403\",verdict=\"DROPPED\",reporter=\"server\"} 1"));
  EXPECT_THAT(metrics.out, HasSubstr("hubble_http_request_duration_seconds_count{method=\"GET\",reporter=\"server\"}"));
  EXPECT_THAT(metrics.out, HasSubstr("cilium_proxy_redirects{proxy_type=\"http\"} 1"));
}

TEST_F(L7Policy, KeepAliveConnectionMixesAllowedAndDeniedRequests) {
  create_http_pods();
  apply_ok(allow_api_only());
  nlohmann::json out = python_in_client(kKeepAliveScript);
  ASSERT_EQ(out.size(), 4u) << out.dump();
  EXPECT_EQ(out[0]["status"], 200);
  EXPECT_EQ(out[0]["body"], "server GET /api/users 0\n");
  EXPECT_EQ(out[1]["status"], 403);
  EXPECT_EQ(out[1]["body"], "Access denied");
  EXPECT_EQ(out[2]["status"], 403);
  EXPECT_EQ(out[3]["status"], 200);
  EXPECT_EQ(out[3]["body"], "server GET /api/items 0\n");
  for (const auto& r : out) EXPECT_EQ(r["port"], out[0]["port"]) << "every request on one connection: " << out.dump();
  EXPECT_EQ(status()["proxy"]["redirects"].get<int>(), 1);
}

TEST_F(L7Policy, HostileClientsGetCleanErrorsAndNeverStallOthers) {
  create_http_pods();
  apply_ok(allow_api_only());
  nlohmann::json r = python_in_client(kHostileScript, 60s);
  EXPECT_EQ(r["during_slow"], "HTTP/1.1 200 OK") << r.dump();
  EXPECT_LT(r["during_slow_seconds"].get<double>(), 2.0) << "a slow client must not hold others up";
  EXPECT_THAT(r["malformed"].get<std::string>(), StartsWith("HTTP/1.1 400")) << r.dump();
  EXPECT_THAT(r["oversized"].get<std::string>(), StartsWith("HTTP/1.1 431")) << r.dump();
  EXPECT_EQ(r["large_header"], "HTTP/1.1 200 OK") << "20 KB of headers are fine: " << r.dump();
  EXPECT_EQ(r["pipelined"], nlohmann::json({"HTTP/1.1 200 OK", "HTTP/1.1 403 Forbidden", "HTTP/1.1 200 OK"})) << r.dump();
  EXPECT_EQ(r["pipelined_bodies"], nlohmann::json({"server GET /api/a 0", "server GET /api/c 0"})) << r.dump();
  EXPECT_EQ(r["chunked"], "HTTP/1.1 200 OK") << r.dump();
  EXPECT_EQ(r["chunked_body"], "server GET /api/upload 11\n") << r.dump();
  EXPECT_EQ(r["expect_interim"], "HTTP/1.1 100 Continue") << r.dump();
  EXPECT_EQ(r["expect_final"], "HTTP/1.1 200 OK") << r.dump();
  EXPECT_EQ(r["expect_body"], "server GET /api/expect 4\n") << r.dump();
  EXPECT_EQ(r["expect_denied"], "HTTP/1.1 403 Forbidden") << r.dump();
  EXPECT_EQ(r["after"], "HTTP/1.1 200 OK") << r.dump();
  EXPECT_EQ(r["slow"], "") << "a slow client is disconnected: " << r.dump();
  EXPECT_GT(r["slow_seconds"].get<double>(), 9.0) << "after the 10 s header deadline";
  EXPECT_LT(r["slow_seconds"].get<double>(), 15.0);

  auto proxy = status()["proxy"];
  EXPECT_GE(proxy["parseErrors"].get<int>(), 2) << proxy.dump();
  EXPECT_GE(proxy["timeouts"].get<int>(), 1) << proxy.dump();
  EXPECT_EQ(proxy["activeConnections"].get<int>(), 0) << proxy.dump();
}

TEST_F(L7Policy, DeadUpstreamGets503AndTheConnectionStaysUsable) {
  create_http_pods();
  apply_ok(fill(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l7-two-ports
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: backend
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: frontend
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      - port: "81"
        protocol: TCP
      rules:
        http:
        - method: "GET"
)yaml",
                {{"$NS", ns()}}));
  EXPECT_EQ(curl("GET", "/", 81).status, 503) << "nothing listens on 81";
  EXPECT_EQ(curl("GET", "/", 80).status, 200);
  EXPECT_GE(status()["proxy"]["upstreamErrors"].get<int>(), 1);
}

TEST_F(L7Policy, DdosProtectionClusterwidePolicyAllowsOnlyGetFromItsCidr) {
  create_http_pods();
  // The seed's policy as written (examples/policies/ddos-protection.yaml).
  apply_ok(R"yaml(apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: ddos-protection
spec:
  endpointSelector: {}
  ingress:
  - fromCIDR:
    - "10.0.0.0/8"
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: "GET"
)yaml");
  EXPECT_EQ(curl("GET", "/anything").status, 200);
  Reply post = curl("POST", "/anything");
  EXPECT_EQ(post.status, 403);
  EXPECT_EQ(post.body, "Access denied");
  EXPECT_EQ(curl("DELETE", "/api/users").status, 403);
  EXPECT_EQ(http_flows({"--verdict", "DROPPED", "--http-method", "DELETE"}).size(), 2u);
}

TEST_F(L7Policy, RemovingTheL7RuleTakesNewConnectionsOffTheProxy) {
  create_http_pods();
  apply_ok(allow_api_only());
  EXPECT_EQ(curl("POST", "/api/users").status, 403);
  int redirects = status()["proxy"]["redirects"].get<int>();
  EXPECT_EQ(redirects, 1);

  // The same policy at L4 only: port 80 allowed, no HTTP rules.
  apply_ok(allow_api_only_without_http_rules());
  Reply post = curl("POST", "/api/users");
  EXPECT_EQ(post.status, 200);
  EXPECT_EQ(post.body, "server POST /api/users 0\n");
  EXPECT_EQ(status()["proxy"]["redirects"].get<int>(), redirects) << "the new connection went straight to the server";
  EXPECT_EQ(status()["proxy"]["redirectEntries"].get<int>(), 0);
}

TEST_F(L7Policy, ServiceInFrontOfAnL7PolicedPodIsPolicedPerRequestOnBothPaths) {
  create_http_pods();
  apply_ok(allow_api_only() + "---\n" + fill(R"yaml(apiVersion: v1
kind: Service
metadata:
  name: backend
  namespace: $NS
spec:
  selector:
    app: backend
  ports:
  - port: 8080
    targetPort: 80
    protocol: TCP
)yaml",
                                               {{"$NS", ns()}}));
  CommandResult r = agent().pilus({"get", "services", "backend", "-n", ns(), "-o", "json"});
  ASSERT_TRUE(r.ok()) << r.describe();
  std::string vip = nlohmann::json::parse(r.out)["spec"]["clusterIP"];
  for (bool in_cgroup : {false, true}) {
    SCOPED_TRACE(in_cgroup ? "socket load balancer" : "per-packet DNAT");
    Reply get = curl_url("GET", "http://" + vip + ":8080/api/users", in_cgroup);
    EXPECT_EQ(get.status, 200);
    EXPECT_EQ(get.body, "server GET /api/users 0\n");
    Reply post = curl_url("POST", "http://" + vip + ":8080/api/users", in_cgroup);
    EXPECT_EQ(post.status, 403);
    EXPECT_EQ(post.body, "Access denied");
  }
  // Both denied requests are L7 flows to the backend pod, named as the client asked for it.
  auto denied = http_flows({"--to-pod", ns() + "/backend", "--verdict", "DROPPED", "--http-method", "POST"});
  size_t requests = 0;
  for (const auto& f : denied)
    if (f["l7"]["type"] == "REQUEST") {
      requests++;
      EXPECT_EQ(f["l7"]["http"]["url"], "http://" + vip + ":8080/api/users") << f.dump();
      EXPECT_EQ(f["source"]["pod_name"], "frontend") << f.dump();
    }
  EXPECT_EQ(requests, 2u);
}

}  // namespace
}  // namespace pilus::e2e
