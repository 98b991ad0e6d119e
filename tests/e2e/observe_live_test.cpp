// pilus observe while traffic happens: a follower started before the traffic sees exactly that
// traffic, and a burst beyond the events ring buffer is counted as lost, never hidden.
#include <sys/wait.h>

#include <optional>
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

// What the follower of FollowStartedBeforeTheTrafficSeesExactlyThatTraffic saw: each kind of
// flow its traffic makes, and every flow that is not what it should be.
struct FollowedFlows {
  bool good_forwarded = false, good_allowed_verdict = false, bad_dropped = false, bad_denied_verdict = false,
       alt_dropped = false;
  std::vector<std::string> unexpected;

  bool complete() const {
    return good_forwarded && good_allowed_verdict && bad_dropped && bad_denied_verdict && alt_dropped;
  }
};

FollowedFlows classify(const std::string& out) {
  FollowedFlows seen;
  for (const auto& f : flows_of(out)) {
    // verify()'s positive controls (the server answering the node) are ours too: skip them.
    if (f["source"].value("identity", 0) == 1) continue;
    std::string from = f["source"].value("pod_name", "");
    std::string verdict = f.value("verdict", "");
    int port = f["l4"]["TCP"].value("destination_port", 0);
    auto expect = [&](bool ok, const char* what) {
      if (!ok) seen.unexpected.push_back(std::string(what) + ": " + f.dump());
    };
    expect(f["destination"].value("pod_name", "") == "server", "not to the server");
    if (from != "good" && from != "bad") {
      expect(false, "a flow nobody sent");
      continue;
    }
    bool policy_verdict = f["event_type"].value("type", 0) == 5;
    if (f.value("traffic_direction", "") == "EGRESS") {
      // Seen leaving the sender, whose egress no policy restricts: forwarded, decided at the server.
      expect(verdict == "FORWARDED" && !policy_verdict, "an egress flow not plainly forwarded");
      continue;
    }
    if (from == "good" && port == kTcpPort) {
      expect(verdict == "FORWARDED", "good's allowed traffic not forwarded");
      seen.good_forwarded = seen.good_forwarded || !policy_verdict;
      if (policy_verdict) {
        expect(f.value("policy_match_type", 0) == 2, "not allowed by an L3-L4 entry");
        seen.good_allowed_verdict = true;
      }
    } else {
      expect(verdict == "DROPPED" && f.value("drop_reason_desc", "") == "POLICY_DENIED", "not dropped by default deny");
      if (from == "bad") (policy_verdict ? seen.bad_denied_verdict : seen.bad_dropped) = true;
      if (from == "good") seen.alt_dropped = true;
    }
  }
  return seen;
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

  // Follow first, from now on (no --last): only what happens after this point. The agent counts
  // a follower once it knows from which flow on it follows: traffic starts after that.
  ChildProcess follower({pilus_bin(), "--socket", agent().socket(), "observe", "--follow", "-o", "json", "--to-pod",
                         ns() + "/server"});
  ASSERT_TRUE(wait_until([&] { return follower.exited() || status().value("observeFollowers", 0) == 1; }))
      << "the agent never counted the follower: " << status().dump();
  ASSERT_FALSE(follower.exited()) << "observe --follow ended by itself";

  Matrix m;
  m.allow(good, server, kTcpPort, "tcp").deny(bad, server, kTcpPort, "tcp").deny(good, server, kAltTcpPort, "tcp");
  verify(m);
  // Until every kind of flow the traffic made has reached the follower's output.
  EXPECT_TRUE(wait_until([&] { return follower.exited() || classify(follower.output_so_far()).complete(); }))
      << follower.output_so_far();
  CommandResult r = follower.wait(100ms);  // still following: stopped here
  ASSERT_TRUE(r.timed_out) << "observe --follow ended by itself: " << r.describe();

  ASSERT_FALSE(flows_of(r.out).empty()) << r.describe();
  FollowedFlows seen = classify(r.out);
  EXPECT_THAT(seen.unexpected, ::testing::IsEmpty());
  EXPECT_TRUE(seen.good_forwarded) << r.out;
  EXPECT_TRUE(seen.good_allowed_verdict) << r.out;
  EXPECT_TRUE(seen.bad_dropped) << r.out;
  EXPECT_TRUE(seen.bad_denied_verdict) << r.out;
  EXPECT_TRUE(seen.alt_dropped) << r.out;
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
  // Settled: two reads 200 ms apart agree (the first check only takes the first read).
  auto settle = [&] {
    std::optional<decltype(totals())> last;
    wait_until(
        [&] {
          auto now = totals();
          if (!last) return last = now, false;
          bool same = now.flows == last->flows && now.lost == last->lost && now.denied == last->denied;
          last = now;
          return same;
        },
        60s, 200ms);
    return *last;
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
