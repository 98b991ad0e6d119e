// A real Prometheus server (Debian's package), started by the test on loopback, scrapes the
// agent's /metrics; values read back through Prometheus's HTTP query API match the agent's own.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

namespace fs = std::filesystem;

// A Prometheus process with its own config and storage in a temporary directory; killed by
// its pid and the directory removed when dropped.
class PrometheusServer {
 public:
  explicit PrometheusServer(const std::string& target) : listen_(free_loopback_addr()) {
    char dir[] = "/tmp/pilus-e2e-prometheus-XXXXXX";
    if (!mkdtemp(dir)) throw HarnessError("mkdtemp failed");
    dir_ = dir;
    std::ofstream(dir_ + "/prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                            << "scrape_configs:\n  - job_name: pilus\n    static_configs:\n"
                                            << "      - targets: ['" << target << "']\n";
    process_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        "prometheus", "--config.file=" + dir_ + "/prometheus.yml", "--storage.tsdb.path=" + dir_ + "/data",
        "--web.listen-address=" + listen_, "--log.level=error"});
  }
  ~PrometheusServer() {
    process_.reset();  // SIGKILL by pid, reaped
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The instant query's single value, or nullopt when Prometheus has none (yet).
  std::optional<double> query(const std::string& promql) const {
    CommandResult r = run_command({"curl", "-sf", "--get", "--data-urlencode", "query=" + promql,
                                   "http://" + listen_ + "/api/v1/query"});
    if (!r.ok()) return std::nullopt;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return std::nullopt;
    const auto& result = j["data"]["result"];
    if (!result.is_array() || result.size() != 1) return std::nullopt;
    return std::stod(result[0]["value"][1].get<std::string>());
  }

  bool exited() const { return process_->exited(); }

 private:
  std::string listen_, dir_;
  std::unique_ptr<ChildProcess> process_;
};

double agent_value(const TestAgent& agent, const std::string& sample_prefix) {
  CommandResult r = run_command({"curl", "-sf", "http://" + agent.metrics_addr() + "/metrics"});
  if (!r.ok()) throw HarnessError("scraping metrics: " + r.describe());
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(sample_prefix, 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
  return 0;
}

using PrometheusScrape = PolicyTest;

TEST_F(PrometheusScrape, QueryApiReturnsTheAgentsDropCount) {
  create({server_in(ns(), "server"), server_in(ns(), "client")});
  Peer server = at(ns(), "server"), client = at(ns(), "client");
  apply_ok(fill(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: server-closed
  namespace: $NS
spec:
  podSelector:
    matchLabels:
      app: server
  policyTypes: [Ingress]
)yaml",
                {{"$NS", ns()}}));
  Matrix m;
  m.deny(client, server, kTcpPort, "tcp").deny(client, server, kUdpPort, "udp");
  verify(m);

  PrometheusServer prometheus(agent().metrics_addr());
  const std::string sample = "cilium_drop_count_total{reason=\"Policy denied\",direction=\"INGRESS\"}";
  std::optional<double> seen, up;
  double expected = 0;
  for (int i = 0; i < 60 && !(seen && *seen == expected && expected > 0); i++) {
    std::this_thread::sleep_for(500ms);
    ASSERT_FALSE(prometheus.exited()) << "prometheus exited";
    expected = agent_value(agent(), sample);
    seen = prometheus.query(sample);
    up = prometheus.query("up{job=\"pilus\"}");
  }
  ASSERT_TRUE(seen.has_value()) << "Prometheus never returned " << sample;
  EXPECT_GT(expected, 0) << "the denied probes are counted by the agent";
  EXPECT_EQ(*seen, expected) << "Prometheus's value is the agent's";
  EXPECT_EQ(up.value_or(0), 1) << "the scrape target is up";
  // Hubble's family is there too, labelled as Hubble labels it.
  auto hubble = prometheus.query("sum(hubble_drop_total{reason=\"POLICY_DENIED\"})");
  ASSERT_TRUE(hubble.has_value());
  EXPECT_GT(*hubble, 0);
}

}  // namespace
}  // namespace pilus::e2e
