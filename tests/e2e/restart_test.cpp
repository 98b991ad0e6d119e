// Restarting the agent, after a crash or a clean stop, leaves pods and their live connections untouched.
#include <signal.h>

#include <thread>

#include "e2e/scenario.h"

namespace pilus::e2e {
namespace {

using AgentRestart = PodNetworkTest;

// What a pod must keep across agent restarts, by namespace/name.
nlohmann::json pod_facts(const TestAgent& agent) {
  nlohmann::json facts = nlohmann::json::object();
  for (const auto& p : agent.pods()) {
    const auto& s = p["status"];
    facts[p["metadata"]["namespace"].get<std::string>() + "/" + p["metadata"]["name"].get<std::string>()] = {
        {"podIP", s["podIP"]}, {"identity", s["identity"]}, {"netns", s["netns"]}, {"pid", s["pid"]},
        {"phase", s["phase"]}};
  }
  return facts;
}

TEST_F(AgentRestart, ALiveConnectionSurvivesACrashAndACleanRestartWithoutLossOrRetransmits) {
  create_pods({idle_pod("client"), server_pod("server")});
  const nlohmann::json before = pod_facts(agent());

  ChildProcess stream({"ip", "netns", "exec", pod("client").netns, netprobe_bin(), "stream", pod("server").ip,
                       std::to_string(kTcpPort), "--duration-ms", "8000", "--interval-ms", "20"});
  // Each restart must find the connection carrying traffic (a message every 20 ms), and the
  // next one comes only once traffic went through the restarted agent's programs.
  const std::string to = pod("server").ip + ":" + std::to_string(kTcpPort);
  auto carries_traffic_beyond = [&](uint64_t packets) {
    return wait_until([&] { return agent().tracked_packets(pod("client").ip, to) >= packets + 10; }, 20s, 50ms);
  };
  ASSERT_TRUE(carries_traffic_beyond(0)) << "the stream never started";

  const uint64_t before_crash = agent().tracked_packets(pod("client").ip, to);
  agent().restart(SIGKILL);  // a crash: no chance to tidy up
  ASSERT_TRUE(carries_traffic_beyond(before_crash)) << "no traffic after the crash";
  EXPECT_EQ(agent().stop(SIGTERM), 0) << "a clean stop exits 0";
  agent().start();
  EXPECT_FALSE(stream.exited()) << "the connection must still be open after both restarts, or they proved nothing";

  CommandResult r = stream.wait(30s);
  ASSERT_TRUE(r.ok()) << r.describe();
  auto result = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(result.is_object()) << r.out;
  EXPECT_GT(result["sent"].get<uint64_t>(), 0u);
  EXPECT_EQ(result["errors"], 0) << r.out;
  EXPECT_EQ(result["received"], result["sent"]) << r.out;
  EXPECT_EQ(result["retransmits"], 0) << "every segment got through the first time: " << r.out;

  EXPECT_EQ(pod_facts(agent()), before) << "pods keep their IP, identity, netns and process";
  expect_reachable(pod("client"), pod("server"), kTcpPort, "tcp");
}

TEST_F(AgentRestart, NewPodsCanBeAddedAndReachedAfterARestart) {
  create_pods({server_pod("old")});
  agent().restart(SIGKILL);
  create_pods({server_pod("new")});

  EXPECT_NE(pod("new").ip, pod("old").ip) << "the restarted agent remembers which addresses are taken";
  expect_reachable(pod("new"), pod("old"), kTcpPort, "tcp");
  expect_reachable(pod("old"), pod("new"), kUdpPort, "udp");
}

}  // namespace
}  // namespace pilus::e2e
