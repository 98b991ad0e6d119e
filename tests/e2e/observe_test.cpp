// pilus observe end to end: real allowed and denied traffic between pods shows up
// as flows with the right verdicts, reasons, pods and ports, and the filters select them.
#include <gmock/gmock.h>

#include <sstream>

#include "e2e/policy_fixture.h"

namespace pilus::e2e {
namespace {

using ObserveFlows = PolicyTest;

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> flows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) flows.push_back(nlohmann::json::parse(line));
  return flows;
}

TEST_F(ObserveFlows, AllowedAndDeniedTrafficBecomeFlowsWithVerdictAndReason) {
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
)yaml",
                {{"$NS", ns()}}));
  Matrix m;
  m.allow(good, server, kTcpPort, "tcp").deny(bad, server, kTcpPort, "tcp");
  verify(m);

  CommandResult r = agent().pilus({"observe", "--all", "-o", "json", "--to-pod", ns() + "/server"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool forwarded_from_good = false, dropped_from_bad = false;
  for (const auto& line : json_lines(r.out)) {
    if (!line.contains("flow")) continue;
    const auto& f = line["flow"];
    EXPECT_EQ(f["destination"]["pod_name"], "server") << f.dump();
    std::string from = f["source"].value("pod_name", "");
    if (from == "good" && f["verdict"] == "FORWARDED" && f["l4"]["TCP"]["destination_port"] == kTcpPort)
      forwarded_from_good = true;
    if (from == "bad" && f["verdict"] == "DROPPED") {
      EXPECT_EQ(f["drop_reason_desc"], "POLICY_DENIED") << f.dump();
      EXPECT_EQ(f["traffic_direction"], "INGRESS") << f.dump();
      EXPECT_EQ(f["ingress_denied_by"][0]["name"], "only-good") << f.dump();
      dropped_from_bad = true;
    }
  }
  EXPECT_TRUE(forwarded_from_good) << r.out;
  EXPECT_TRUE(dropped_from_bad) << r.out;

  // Filters: --verdict DROPPED keeps only drops; --not --verdict DROPPED none of them.
  CommandResult drops = agent().pilus({"observe", "--all", "-o", "json", "--verdict", "DROPPED"});
  ASSERT_EQ(drops.exit_code, 0) << drops.err;
  size_t seen = 0;
  for (const auto& line : json_lines(drops.out)) {
    if (!line.contains("flow")) continue;
    EXPECT_EQ(line["flow"]["verdict"], "DROPPED");
    seen++;
  }
  EXPECT_GT(seen, 0u);
  CommandResult others = agent().pilus({"observe", "--all", "-o", "json", "--not", "--verdict", "DROPPED"});
  ASSERT_EQ(others.exit_code, 0) << others.err;
  for (const auto& line : json_lines(others.out))
    if (line.contains("flow")) EXPECT_NE(line["flow"]["verdict"], "DROPPED");

  // The compact form reads like Hubble's, and names the policy behind the default deny.
  CommandResult compact = agent().pilus({"observe", "--all", "--from-pod", ns() + "/bad", "--type", "drop"});
  ASSERT_EQ(compact.exit_code, 0) << compact.err;
  EXPECT_THAT(compact.out, ::testing::HasSubstr("Policy denied by default (CiliumNetworkPolicy " + ns() +
                                                "/only-good) DROPPED (TCP Flags: SYN)"));
}

TEST_F(ObserveFlows, BadFilterIsRefusedNamingTheFlag) {
  CommandResult r = agent().pilus({"observe", "--verdict", "BOGUS"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, ::testing::HasSubstr("--verdict"));
}

}  // namespace
}  // namespace pilus::e2e
