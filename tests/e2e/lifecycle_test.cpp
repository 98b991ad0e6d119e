// A pod's life on the node: its command runs in its netns, delete takes it all away, and
// `pilus cleanup` leaves nothing of the agent behind, whether it stopped cleanly or crashed.
#include <signal.h>

#include <filesystem>
#include <thread>

#include <gmock/gmock.h>

#include "e2e/scenario.h"

namespace pilus::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

using PodLifecycle = PodNetworkTest;
using Cleanup = PodNetworkTest;
using AgentProcess = PodNetworkTest;

TEST_F(PodLifecycle, APodsCommandRunsInItsNetnsAndDeleteStopsItAndRemovesItsNetwork) {
  auto echo = server_pod("echo");
  create_pods({echo});
  const auto status = agent().pod(ns(), "echo")["status"];
  const std::string netns = status["netns"], host_if = status["hostInterface"];
  const pid_t pid = status["pid"];

  EXPECT_EQ(netns, "pl-" + ns() + "_echo");
  EXPECT_EQ(status["phase"], "Running");
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(process_in_netns(pid, netns)) << "pid " << pid << " should live in netns " << netns;
  EXPECT_TRUE(link_exists(host_if));
  expect_reachable(node(), pod("echo"), kTcpPort, "tcp");

  delete_pods({echo});
  EXPECT_TRUE(process_gone(pid)) << "the pod's command (pid " << pid << ") must be stopped";
  EXPECT_FALSE(netns_exists(netns));
  EXPECT_FALSE(link_exists(host_if)) << "host side of the pod's veth";
  EXPECT_THAT(agent().pods().dump(), Not(HasSubstr("\"echo\"")));
}

TEST_F(PodLifecycle, DeleteStillStopsThePodsCommandAfterTheAgentCrashedAndRestarted) {
  auto echo = server_pod("echo");
  create_pods({echo});
  const auto status = agent().pod(ns(), "echo")["status"];
  const pid_t pid = status["pid"];
  // The restarted agent is no longer the parent of the pod's command.
  agent().restart(SIGKILL);
  EXPECT_FALSE(process_gone(pid)) << "a crashed agent leaves its pods running";

  delete_pods({echo});
  EXPECT_TRUE(process_gone(pid)) << "pid " << pid;
  EXPECT_FALSE(netns_exists(status["netns"]));
  EXPECT_FALSE(link_exists(status["hostInterface"]));
}

// Everything one agent can leave on the node, taken before cleanup.
struct Footprint {
  std::vector<std::string> netns, links;
  std::vector<pid_t> processes;
};

Footprint footprint(const TestAgent& agent) {
  Footprint f;
  f.links.push_back(agent.host_device());
  for (const auto& p : agent.pods()) {
    f.netns.push_back(p["status"]["netns"]);
    f.links.push_back(p["status"]["hostInterface"]);
    if (p["status"]["pid"] != 0) f.processes.push_back(p["status"]["pid"]);
  }
  f.processes.push_back(agent.pid());
  return f;
}

void expect_nothing_left(const TestAgent& agent, const Footprint& before) {
  ASSERT_FALSE(before.netns.empty()) << "a footprint without pods checks nothing of them";
  EXPECT_THAT(netns_with_prefix("pl-" + agent.ns()), IsEmpty());
  for (const auto& n : before.netns) EXPECT_FALSE(netns_exists(n)) << n;
  for (const auto& l : before.links) EXPECT_FALSE(link_exists(l)) << l;
  for (pid_t pid : before.processes) EXPECT_TRUE(process_gone(pid)) << "pid " << pid;
  EXPECT_FALSE(fs::exists(agent.bpf_root())) << agent.bpf_root();
  EXPECT_FALSE(fs::exists(agent.cgroup_dir())) << agent.cgroup_dir();
  EXPECT_FALSE(fs::exists(agent.state_dir())) << agent.state_dir();
  EXPECT_FALSE(fs::exists(agent.socket())) << agent.socket();
  std::string network = agent.pod_cidr().substr(0, agent.pod_cidr().rfind('.') + 1);
  EXPECT_THAT(run_command({"ip", "-4", "route", "show", "table", "all"}).out, Not(HasSubstr(network)));
}

TEST_F(Cleanup, RemovesEverythingARunningAgentCreated) {
  create_pods({server_pod("served"), idle_pod("idle")});
  const Footprint before = footprint(agent());
  ASSERT_EQ(before.processes.size(), 2u) << "the served pod's command and the agent";

  CommandResult r = agent().cleanup();
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_FALSE(agent().running()) << "cleanup stops the agent";
  expect_nothing_left(agent(), before);
}

TEST_F(Cleanup, RemovesEverythingACrashedAgentCreated) {
  create_pods({server_pod("served"), idle_pod("idle")});
  const Footprint before = footprint(agent());
  agent().stop(SIGKILL);

  CommandResult r = agent().cleanup();
  ASSERT_TRUE(r.ok()) << r.describe();
  expect_nothing_left(agent(), before);
}

// Two agents side by side (the tests' own layout): cleaning one up leaves the other's pods,
// links, pins and traffic alone.
TEST_F(Cleanup, TouchesOnlyItsOwnAgentsObjects) {
  TestAgent other;
  other.apply(join_pods({{other.ns(), "left", {{"app", "left"}},
                          {netprobe_bin(), "serve", "--tcp", std::to_string(kTcpPort), "--name", "left"}},
                         {other.ns(), "right", {{"app", "right"}}, {}}}));
  create_pods({server_pod("served")});
  const Footprint mine = footprint(agent()), theirs = footprint(other);
  const std::string left_ip = other.pod_ip(other.ns(), "left");
  auto other_answers = [&] {
    return wait_until([&] {
      CommandResult r = other.run_in_pod(other.ns(), "right", {netprobe_bin(), "connect", "tcp", left_ip,
                                                               std::to_string(kTcpPort), "--message", "x"});
      return r.ok() && r.out.find("left: x") != std::string::npos;
    });
  };
  ASSERT_TRUE(other_answers()) << "the other agent's pods talk before the cleanup";

  CommandResult r = agent().cleanup();
  ASSERT_TRUE(r.ok()) << r.describe();
  expect_nothing_left(agent(), mine);
  EXPECT_TRUE(other.running());
  ASSERT_FALSE(theirs.netns.empty());
  for (const auto& n : theirs.netns) EXPECT_TRUE(netns_exists(n)) << n;
  for (const auto& l : theirs.links) EXPECT_TRUE(link_exists(l)) << l;
  EXPECT_TRUE(fs::exists(other.bpf_root())) << other.bpf_root();
  EXPECT_TRUE(fs::exists(other.cgroup_dir())) << other.cgroup_dir();
  EXPECT_TRUE(other_answers()) << "the other agent's pods still talk after the cleanup";
}

// The agent refuses to start, saying why, without root, without a capability it needs or
// without a BPF feature it needs; it gets as far as checking, never as far as changing the
// node. A kernel lacking a BPF feature cannot be had here: the agent runs where the bpf()
// system call fails (a seccomp filter, netprobe without-bpf), so every probe fails as on a
// kernel built without BPF; optional features are not named.
TEST_F(AgentProcess, RefusesToStartWithoutRootACapabilityOrABpfFeature) {
  const std::string dir = "/tmp/pilus-e2e-refuse-" + agent().tag();
  const std::string pins = "/sys/fs/bpf/pilus-e2e-refuse-" + agent().tag();
  const std::vector<std::string> agent_args = {
      pilus_bin(), "agent", "--state-dir", dir + "/state", "--socket", dir + "/pilus.sock", "--bpf-root", pins,
      "--host-device", "pr" + agent().tag(), "--cgroup", "pilus-e2e-refuse-" + agent().tag(), "--metrics-addr", ""};
  struct Case {
    std::string what;
    std::vector<std::string> launcher;
    std::vector<std::string> says;
    std::vector<std::string> never_says;
  };
  const std::vector<Case> cases = {
      {"not root", {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}, {"must run as root"}, {}},
      {"no CAP_NET_ADMIN", {"setpriv", "--bounding-set=-net_admin", "--"}, {"CAP_NET_ADMIN"}, {}},
      {"no bpf()",
       {netprobe_bin(), "without-bpf", "--"},
       {"this kernel lacks BPF features pilus needs", "prog_type sched_cls", "map_type lpm_trie", "map_type ringbuf",
        "helper bpf_redirect"},
       {"prog_type xdp", "helper bpf_redirect_peer"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<std::string> argv = c.launcher;
    argv.insert(argv.end(), agent_args.begin(), agent_args.end());
    CommandResult r = run_command(argv, "", 30s);
    EXPECT_NE(r.exit_code, 0) << r.describe();
    for (const auto& text : c.says) EXPECT_THAT(r.err, HasSubstr(text)) << r.describe();
    for (const auto& text : c.never_says) EXPECT_THAT(r.err, Not(HasSubstr(text))) << r.describe();
    EXPECT_FALSE(link_exists("pr" + agent().tag())) << "a refused agent created its host device";
    EXPECT_FALSE(fs::exists(pins)) << "a refused agent pinned maps";
    EXPECT_FALSE(fs::exists(dir + "/state/store.db")) << "a refused agent opened its store";
  }
  fs::remove_all(dir);
}

// DESIGN: "the daemon, in the foreground; logs to stderr".
TEST_F(AgentProcess, LogsGoToStderrNotStdout) {
  create_pods({idle_pod("logged")});
  EXPECT_THAT(agent().stderr_log(), HasSubstr("serving the API")) << "stdout got:\n" << agent().stdout_log();
  EXPECT_THAT(agent().stderr_log(), HasSubstr("logged")) << "pod creation is logged";
}

}  // namespace
}  // namespace pilus::e2e
