// pilus observe while traffic happens: a follower started before the traffic sees exactly that
// traffic, and a burst beyond the events ring buffer is counted as lost, never hidden.
#include <sys/wait.h>

#include <thread>

#include <gmock/gmock.h>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

std::vector<nlohmann::json> flows_of(const std::string& out) {
  std::vector<nlohmann::json> flows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("flow")) flows.push_back(j["flow"]);
  }
  return flows;
}

// The agent's metrics page, read with curl.
std::string scrape(const TestAgent& agent) {
  CommandResult r = run_command({"curl", "-sf", "http://" + agent.metrics_addr() + "/metrics"});
  if (!r.ok()) throw HarnessError("scraping metrics: " + r.describe());
  return r.out;
}

// The sum of every sample of a metric family whose labels contain all of `with` ("k=\"v\"" strings).
double metric_sum(const std::string& text, const std::string& name, const std::vector<std::string>& with = {}) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    bool all = true;
    for (const auto& w : with) all = all && line.find(w) != std::string::npos;
    if (all) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

using ObserveLive = PolicyTest;

TEST_F(ObserveLive, FollowStartedBeforeTheTrafficSeesExactlyThatTraffic) {
  create({server_in(ns(), "server"), server_in(ns(), "good"), server_in(ns(), "bad")});
  Peer server = at(ns(), "server"), good = at(ns(), "good"), bad = at(ns(), "bad");
  apply_ok(fill(R"yaml(apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: only-good
  namespace: $NS
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: good
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
)yaml",
                {{"$NS", ns()}}));

  // Follow first, from now on (no --last): only what happens after this point.
  ChildProcess follower({pilus_bin(), "--socket", agent().socket(), "observe", "--follow", "-o", "json", "--to-pod",
                         ns() + "/server"});
  std::this_thread::sleep_for(1s);  // the stream is open once the agent saw the request
  ASSERT_FALSE(follower.exited()) << "observe --follow ended by itself";

  Matrix m;
  m.allow(good, server, kTcpPort, "tcp").deny(bad, server, kTcpPort, "tcp").deny(good, server, kAltTcpPort, "tcp");
  verify(m);
  std::this_thread::sleep_for(1500ms);  // flows reach the follower within a poll interval
  CommandResult r = follower.wait(100ms);  // still following: stopped here
  ASSERT_TRUE(r.timed_out) << "observe --follow ended by itself: " << r.describe();

  std::vector<nlohmann::json> flows = flows_of(r.out);
  ASSERT_FALSE(flows.empty()) << r.describe();
  bool good_forwarded = false, good_allowed_verdict = false, bad_dropped = false, bad_denied_verdict = false,
       alt_dropped = false;
  for (const auto& f : flows) {
    // verify()'s positive controls (the server answering the node) are ours too: skip them.
    if (f["source"].value("identity", 0) == 1) continue;
    std::string from = f["source"].value("pod_name", "");
    std::string verdict = f.value("verdict", "");
    int port = f["l4"]["TCP"].value("destination_port", 0);
    EXPECT_EQ(f["destination"].value("pod_name", ""), "server") << f.dump();
    ASSERT_TRUE(from == "good" || from == "bad") << "a flow nobody sent: " << f.dump();
    bool policy_verdict = f["event_type"].value("type", 0) == 5;
    if (f.value("traffic_direction", "") == "EGRESS") {
      // Seen leaving the sender, whose egress no policy restricts: forwarded, decided at the server.
      EXPECT_EQ(verdict, "FORWARDED") << f.dump();
      EXPECT_FALSE(policy_verdict) << f.dump();
      continue;
    }
    if (from == "good" && port == kTcpPort) {
      EXPECT_EQ(verdict, "FORWARDED") << f.dump();
      good_forwarded = good_forwarded || !policy_verdict;
      if (policy_verdict) {
        EXPECT_EQ(f.value("policy_match_type", 0), 2) << "allowed by an L3-L4 entry: " << f.dump();
        good_allowed_verdict = true;
      }
    } else {
      EXPECT_EQ(verdict, "DROPPED") << f.dump();
      EXPECT_EQ(f.value("drop_reason_desc", ""), "POLICY_DENIED") << f.dump();
      if (from == "bad") (policy_verdict ? bad_denied_verdict : bad_dropped) = true;
      if (from == "good") alt_dropped = true;
    }
  }
  EXPECT_TRUE(good_forwarded) << r.out;
  EXPECT_TRUE(good_allowed_verdict) << r.out;
  EXPECT_TRUE(bad_dropped) << r.out;
  EXPECT_TRUE(bad_denied_verdict) << r.out;
  EXPECT_TRUE(alt_dropped) << r.out;
}

// A 4 KiB ring holds ~64 records: a burst of denied datagrams (two records each, the verdict and
// the drop) overflows it. Every record is then either a flow or a lost event: nothing vanishes.
class ObserveBurst : public PolicyTest {
 protected:
  TestAgent::Options agent_options() const override {
    TestAgent::Options o;
    o.agent_args = {"--event-buffer", "4096"};
    return o;
  }
};

TEST_F(ObserveBurst, RecordsBeyondTheRingAreCountedAsLost) {
  create({server_in(ns(), "server"), server_in(ns(), "flooder")});
  Peer server = at(ns(), "server"), flooder = at(ns(), "flooder");
  // The flooder may send nothing: each datagram is dropped at its own veth, no connection opens.
  apply_ok(fill(R"yaml(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: flooder-isolated
  namespace: $NS
spec:
  podSelector:
    matchLabels:
      app: flooder
  policyTypes: [Egress]
)yaml",
                {{"$NS", ns()}}));

  // Quiet first: the reader has taken every earlier record.
  auto totals = [&] {
    std::string text = scrape(agent());
    struct {
      double flows, lost, denied, other_drops;
    } t{metric_sum(text, "hubble_flows_processed_total"), metric_sum(text, "hubble_lost_events_total"),
        metric_sum(text, "cilium_drop_count_total", {"reason=\"Policy denied\""}),
        metric_sum(text, "cilium_drop_count_total") - metric_sum(text, "cilium_drop_count_total", {"reason=\"Policy denied\""})};
    return t;
  };
  auto settle = [&] {
    auto last = totals();
    for (int i = 0; i < 50; i++) {
      std::this_thread::sleep_for(200ms);
      auto now = totals();
      if (now.flows == last.flows && now.lost == last.lost && now.denied == last.denied) return now;
      last = now;
    }
    return last;
  };
  auto before = settle();

  constexpr long kDatagrams = 20000;
  CommandResult sent = agent().run_in_pod(ns(), "flooder",
                                          {netprobe_bin(), "burst", server.ip, std::to_string(kUdpPort), "--count",
                                           std::to_string(kDatagrams)});
  ASSERT_TRUE(sent.ok()) << sent.describe();
  auto after = settle();

  double denied = after.denied - before.denied;
  double records = 2 * denied + (after.other_drops - before.other_drops);
  double flows = after.flows - before.flows, lost = after.lost - before.lost;
  EXPECT_EQ(denied, double(kDatagrams)) << "every datagram is dropped by policy and counted";
  EXPECT_GT(lost, 0) << "the burst must overflow a 4 KiB ring";
  EXPECT_GT(flows, 0) << "the ring still delivers what fits";
  EXPECT_EQ(flows + lost, records) << "every record is a flow or a lost event: flows " << flows << ", lost " << lost;

  // The same count in status, and in the stream a reader sees.
  nlohmann::json st = status();
  EXPECT_GE(st.value("lostEvents", 0.0), lost) << st.dump();
  CommandResult observed = agent().pilus({"observe", "--all", "-o", "json", "--from-pod", ns() + "/flooder"});
  ASSERT_TRUE(observed.ok()) << observed.describe();
  EXPECT_THAT(observed.out, ::testing::HasSubstr("\"lost_events\"")) << "observe must report the loss";
}

}  // namespace
}  // namespace pilus::e2e
