// The agent's own surfaces under an outside probe (issue 12): slow and half-sent clients on the
// API socket and the metrics port, descriptor exhaustion, bad request bodies, fragments.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr const char* kNobody = "65534";  // nobody / nogroup

// user + system CPU seconds the process has used.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  std::getline(in, content);
  std::istringstream fields(content.substr(content.rfind(')') + 2));
  std::vector<std::string> f;
  for (std::string s; fields >> s;) f.push_back(s);
  if (f.size() < 13) throw HarnessError("cannot read /proc/" + std::to_string(pid) + "/stat");
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

size_t open_fds(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) n++;
  return n;
}

rlimit descriptor_limit(pid_t pid) {
  rlimit lim{};
  if (prlimit(pid, RLIMIT_NOFILE, nullptr, &lim) != 0) throw HarnessError("prlimit failed");
  return lim;
}

std::string scrape(const TestAgent& agent) {
  CommandResult r = run_command({"curl", "-sS", "--max-time", "30", "http://" + agent.metrics_addr() + "/metrics"}, "", 40s);
  if (!r.ok()) throw HarnessError("scraping metrics: " + r.describe());
  return r.out;
}

// The sample's value in a Prometheus text, 0 when absent.
double sample(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
  return 0;
}

double refused(const std::string& metrics, const std::string& server, const std::string& reason) {
  return sample(metrics, "pilus_api_refused_connections_total{server=\"" + server + "\",reason=\"" + reason + "\"}");
}

// `netprobe hold`: many connections, each with a request half sent, held until release().
class SlowClients {
 public:
  // target: {"tcp", ip, port} or {"unix", path}; as_nobody runs the client without privileges.
  SlowClients(std::vector<std::string> target, int count, bool as_nobody, const std::string& send = "")
      : ready_(fs::temp_directory_path() / ("pilus-e2e-slow-" + std::to_string(getpid()) + "-" +
                                            std::to_string(next_id_++))) {
    fs::remove(ready_);
    std::vector<std::string> argv;
    if (as_nobody) {
      argv = {"setpriv", std::string("--reuid=") + kNobody, std::string("--regid=") + kNobody, "--clear-groups"};
    }
    argv.push_back(netprobe_bin());
    argv.push_back("hold");
    argv.insert(argv.end(), target.begin(), target.end());
    for (const std::string& a : {std::string("--count"), std::to_string(count), std::string("--hold-ms"),
                                 std::string("0"), std::string("--ready-file"), ready_.string()})
      argv.push_back(a);
    if (!send.empty()) argv.insert(argv.end(), {"--send", send});
    child_ = std::make_unique<ChildProcess>(argv, "release\n");
    auto deadline = std::chrono::steady_clock::now() + 180s;
    while (!fs::exists(ready_)) {
      if (child_->exited()) throw HarnessError("netprobe hold exited early: " + child_->wait(5s).describe());
      if (std::chrono::steady_clock::now() > deadline) throw HarnessError("netprobe hold: not ready in 180 s");
      std::this_thread::sleep_for(50ms);
    }
  }
  ~SlowClients() { fs::remove(ready_); }

  // Closes every connection; netprobe's summary ({"opened", "refused", "closed_by_peer", ...}).
  nlohmann::json release() {
    CommandResult r = child_->wait(60s);
    if (!r.ok()) throw HarnessError("netprobe hold: " + r.describe());
    return nlohmann::json::parse(r.out);
  }

 private:
  static inline int next_id_ = 0;
  fs::path ready_;
  std::unique_ptr<ChildProcess> child_;
};

std::vector<std::string> metrics_target(const TestAgent& agent) {
  const std::string& a = agent.metrics_addr();
  auto colon = a.rfind(':');
  return {"tcp", a.substr(0, colon), a.substr(colon + 1)};
}

// status and apply, each within a generous deadline (the agent is not the only thing running).
void expect_api_answers(const TestAgent& agent, const std::string& what) {
  CommandResult st = run_command({pilus_bin(), "--socket", agent.socket(), "status", "-o", "json"}, "", 60s);
  EXPECT_TRUE(st.ok()) << what << ": status: " << st.describe();
  CommandResult ap = run_command({pilus_bin(), "--socket", agent.socket(), "apply", "-f", "-"},
                                 namespace_yaml(agent.ns()), 60s);
  EXPECT_TRUE(ap.ok()) << what << ": apply: " << ap.describe();
}

TEST(SecurityAgent, HalfSentMetricsRequestsFromAnUnprivilegedUserLeaveStatusAndApplyAnswering) {
  TestAgent agent;
  size_t baseline_fds = open_fds(agent.pid());
  {
    SlowClients slow(metrics_target(agent), 1100, /*as_nobody=*/true);
    expect_api_answers(agent, "1100 half-sent metrics requests held");
    // The metrics server holds at most its cap (64 by default), not one descriptor per client.
    EXPECT_LT(open_fds(agent.pid()), baseline_fds + 64 + 32);
    // A scrape still gets through: it takes the place of the longest-waiting slow client.
    std::string metrics = scrape(agent);
    EXPECT_GT(refused(metrics, "metrics", "evicted"), 1000 - 64) << metrics;
    EXPECT_EQ(refused(metrics, "api", "evicted"), 0) << "the API socket saw none of it";
    auto summary = slow.release();
    EXPECT_EQ(summary["opened"], 1100) << summary.dump();
    EXPECT_GT(summary["closed_by_peer"].get<int>(), 1000 - 64) << summary.dump();
  }
}

TEST(SecurityAgent, HalfSentApiRequestsLeaveStatusAndApplyAnswering) {
  TestAgent agent;
  size_t baseline_fds = open_fds(agent.pid());
  {
    SlowClients headers({"unix", agent.socket()}, 1100, /*as_nobody=*/false);
    // A complete header announcing a body that never comes: held until it is evicted.
    SlowClients bodies({"unix", agent.socket()}, 300, false,
                       "POST /v1/apply HTTP/1.1\r\nHost: pilus\r\nContent-Length: 100000\r\n\r\n{\"sources\": [");
    expect_api_answers(agent, "1400 half-sent API requests held");
    EXPECT_LT(open_fds(agent.pid()), baseline_fds + 256 + 32) << "the API socket keeps to its connection cap";
    std::string metrics = scrape(agent);
    EXPECT_GT(refused(metrics, "api", "evicted"), 1400 - 256) << metrics;
    EXPECT_EQ(refused(metrics, "api", "connection_limit"), 0) << "a waiting client is always closed first";
    headers.release();
    bodies.release();
  }
}

TEST(SecurityAgent, SlowClientsAreClosedAfterTheHeaderAndIdleTimeouts) {
  TestAgent::Options o;
  o.agent_args = {"--api-header-timeout", "1", "--api-idle-timeout", "1"};
  TestAgent agent(o);
  SlowClients headers({"unix", agent.socket()}, 5, false);
  SlowClients bodies({"unix", agent.socket()}, 5, false,
                     "POST /v1/apply HTTP/1.1\r\nHost: pilus\r\nContent-Length: 100\r\n\r\n{");
  std::string metrics;
  wait_until(
      [&] {
        metrics = scrape(agent);
        return refused(metrics, "api", "header_timeout") >= 5 && refused(metrics, "api", "idle_timeout") >= 5;
      },
      60s, 200ms);
  EXPECT_GE(refused(metrics, "api", "header_timeout"), 5) << metrics;
  EXPECT_GE(refused(metrics, "api", "idle_timeout"), 5) << metrics;
  EXPECT_EQ(headers.release()["closed_by_peer"], 5);
  EXPECT_EQ(bodies.release()["closed_by_peer"], 5);
}

TEST(SecurityAgent, DescriptorExhaustionNeitherSpinsNorFloodsTheLogAndRecovers) {
  constexpr int kHardLimit = 384;
  TestAgent::Options o;
  o.launcher = {"/usr/bin/prlimit", "--nofile=64:" + std::to_string(kHardLimit), "--"};
  // Caps above the descriptor limit: here the descriptors run out first.
  o.agent_args = {"--api-max-connections", "5000", "--metrics-max-connections", "5000"};
  TestAgent agent(o);
  rlimit lim = descriptor_limit(agent.pid());
  EXPECT_EQ(lim.rlim_cur, rlim_t(kHardLimit)) << "the agent raises its soft limit to the hard one";
  ASSERT_LT(open_fds(agent.pid()) + 100, size_t(kHardLimit)) << "the test needs headroom to exhaust";

  {
    SlowClients metrics_clients(metrics_target(agent), 600, /*as_nobody=*/true);
    SlowClients api_clients({"unix", agent.socket()}, 600, false);
    EXPECT_GE(open_fds(agent.pid()) + 16, size_t(kHardLimit)) << "the descriptors are (nearly) all taken";

    // A window at exhaustion: the accept loops back off instead of spinning or logging each failure.
    size_t log_before = agent.stdout_log().size() + agent.stderr_log().size();
    double cpu_before = cpu_seconds(agent.pid());
    auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(5s);  // a measurement window, not a wait for something to happen
    double cpu = cpu_seconds(agent.pid()) - cpu_before;
    double window = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    size_t log_growth = agent.stdout_log().size() + agent.stderr_log().size() - log_before;
    EXPECT_LT(cpu, window * 0.3) << "agent CPU over " << window << " s at descriptor exhaustion";
    EXPECT_LT(log_growth, 16u * 1024) << agent.stderr_log().substr(agent.stderr_log().size() > 4096 ? agent.stderr_log().size() - 4096 : 0);

    // Even now status answers: each accept that fails for want of a descriptor closes the
    // longest-waiting slow client, so a real request gets its turn.
    CommandResult st = agent.pilus({"status", "-o", "json"});
    EXPECT_TRUE(st.ok()) << "status at exhaustion: " << st.describe();
    metrics_clients.release();
    api_clients.release();
  }
  // Recovered: everything answers, and the refusals were counted.
  expect_api_answers(agent, "after the slow clients closed");
  std::string metrics = scrape(agent);
  EXPECT_GT(refused(metrics, "api", "descriptor_limit") + refused(metrics, "metrics", "descriptor_limit"), 0) << metrics;
}

TEST(SecurityAgent, WrongTypesInARequestBodyAre400NamingTheField) {
  TestAgent agent;
  auto post = [&](const std::string& body) {
    return run_command({"curl", "-sS", "--unix-socket", agent.socket(), "-w", "\n%{http_code}", "-X", "POST",
                        "--data-binary", body, "http://localhost/v1/apply"});
  };
  struct Case {
    std::string body, field;
  } cases[] = {
      {R"({"sources": 5})", "sources: must be an array, not an integer"},
      {R"({"sources": [{"name": "a", "text": 7}]})", "sources[0].text: must be a string, not an integer"},
      {R"({"sources": [{"name": ["x"], "text": ""}]})", "sources[0].name: must be a string, not an array"},
      {R"({"sources": [{"text": ""}]})", "sources[0].name: missing"},
      {R"([1, 2])", "the body: must be an object, not an array"},
  };
  for (const auto& c : cases) {
    CommandResult r = post(c.body);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_THAT(r.out, HasSubstr("\n400")) << c.body << " -> " << r.out;
    EXPECT_THAT(r.out, HasSubstr(c.field)) << c.body << " -> " << r.out;
    for (const auto& route : {"/v1/delete"}) {
      CommandResult d = run_command({"curl", "-sS", "--unix-socket", agent.socket(), "-w", "\n%{http_code}", "-X",
                                     "POST", "--data-binary", c.body, std::string("http://localhost") + route});
      EXPECT_THAT(d.out, HasSubstr("\n400")) << route << " " << c.body << " -> " << d.out;
    }
  }
}

TEST(SecurityAgent, ABodyOverTheLimitIs413WithAClearMessage) {
  TestAgent::Options o;
  o.agent_args = {"--api-max-request-bytes", "100000"};
  TestAgent agent(o);
  std::string big = namespace_yaml(agent.ns()) + "# " + std::string(200000, 'x') + "\n";
  CommandResult r = agent.try_apply(big);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err + r.out, HasSubstr("request too large")) << r.describe();
  EXPECT_THAT(r.err + r.out, HasSubstr("100000")) << r.describe();
  std::string metrics = scrape(agent);
  EXPECT_GE(refused(metrics, "api", "request_too_large"), 1) << metrics;
  agent.apply(namespace_yaml(agent.ns()));  // a small one still goes through
}

// A fragment from a pod is dropped (the datapath cannot judge it by ports), and its flow names
// the pod's addresses, not 0.0.0.0.
using Fragments = PolicyTest;

TEST_F(Fragments, ADroppedFragmentsFlowCarriesThePodsAddresses) {
  create({server_in(ns(), "server"), server_in(ns(), "client")});
  Peer server = at(ns(), "server"), client = at(ns(), "client");
  // 4000 bytes over a 1500-byte veth: the kernel fragments the datagram before it leaves the pod.
  CommandResult send = run_at(client, {netprobe_bin(), "connect", "udp", server.ip, std::to_string(kUdpPort),
                                       "--message", std::string(4000, 'f'), "--timeout-ms", "500"});
  EXPECT_NE(send.exit_code, 0) << "a fragmented datagram must not get through: " << send.describe();

  bool seen = false;
  std::string last;
  wait_until([&] {
    CommandResult r = agent().pilus({"observe", "--all", "-o", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    last = r.out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("flow")) continue;
      const auto& f = j["flow"];
      if (f.value("drop_reason_desc", "") != "IP_FRAGMENTATION_NOT_SUPPORTED") continue;
      // Before the fix the addresses were 0.0.0.0 and the flow had no "IP" at all.
      nlohmann::json ip = f.value("IP", nlohmann::json::object());
      EXPECT_EQ(ip.value("source", ""), client.ip) << f.dump();
      EXPECT_EQ(ip.value("destination", ""), server.ip) << f.dump();
      seen = true;
    }
    return seen;
  }, 30s, 200ms);
  EXPECT_TRUE(seen) << "no fragment drop among the flows:\n" << last;
}

}  // namespace
}  // namespace pilus::e2e
