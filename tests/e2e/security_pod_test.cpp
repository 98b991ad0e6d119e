// What a pod's processes can reach on the node (regression for "pod commands run as
// root on the node"): each pod gets its own PID, mount, UTS and IPC namespaces, the
// default capability set, and its securityContext. Pods probe from inside and print
// `key=value` lines to their log; the test reads the log from the agent's state dir.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>

#include "e2e/scenario.h"

namespace pilus::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Docker's default set without NET_RAW and MKNOD: CHOWN DAC_OVERRIDE FOWNER FSETID KILL
// SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT AUDIT_WRITE SETFCAP.
constexpr const char* kDefaultCaps = "00000000a00405fb";
constexpr const char* kDefaultPlusNetAdmin = "00000000a00415fb";  // + NET_ADMIN (bit 12)
constexpr const char* kNoCaps = "0000000000000000";

std::string read_whole(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::map<std::string, std::string> key_values(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// Every capability the agent (root, as this test) has: what privileged can get.
std::string all_caps() {
  return key_values(std::regex_replace(read_whole("/proc/self/status"), std::regex(":\t"), "="))["CapPrm"];
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::istringstream s(read_whole("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  for (pid_t c; s >> c;) out.push_back(c);
  return out;
}

class PodSecurity : public PodNetworkTest {
 protected:
  void TearDown() override {
    // Only there if the read-only check failed: never leave it on the node.
    std::filesystem::remove(etc_probe());
    PodNetworkTest::TearDown();
  }

  std::string etc_probe() const { return "/etc/pilus-e2e-probe-" + agent_->tag(); }

  // A pod of the test's namespace; `containers` is the YAML list under spec.containers.
  std::string pod_yaml(const std::string& name, const std::string& containers, const std::string& pod_security = "") const {
    std::string y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  namespace: " + ns() +
                    "\n  labels:\n    app: " + name + "\nspec:\n";
    if (!pod_security.empty()) y += "  securityContext: " + pod_security + "\n";
    return y + "  containers:\n" + containers;
  }

  // One container running `script` under /bin/sh, then staying alive.
  static std::string container(const std::string& name, const std::string& script, const std::string& security = "") {
    std::string y = "  - name: " + name + "\n    command: [\"/bin/sh\", \"-c\", " + nlohmann::json(script + "\nexec sleep 100000").dump() + "]\n";
    if (!security.empty()) y += "    securityContext: " + security + "\n";
    return y;
  }

  // Tries what a hostile pod would, printing `<probe>=<exit code>` and what it sees.
  // `write_etc`: false for pods allowed to write the node's files (privileged).
  std::string probe_script(bool write_etc = true) const {
    std::string victim_netns = "pl-" + ns() + "_victim";
    return "probe() { name=$1; shift; \"$@\" >/dev/null 2>&1; echo \"$name=$?\"; }\n"
           "probe netns_exec ip netns exec " + victim_netns + " true\n"
           "probe bpf_pins ls " + agent_->bpf_root() + "\n"
           "probe addr_add ip addr add 192.0.2.77/32 dev eth0\n" +
           (write_etc ? "probe etc_write touch " + etc_probe() + "\n" : std::string()) +
           "probe tmp_write sh -c 'echo x > /tmp/pilus-e2e-probe-$$ && rm /tmp/pilus-e2e-probe-$$'\n"
           "echo bpf_entries=$(ls -A /sys/fs/bpf | wc -l)\n"
           "echo netns_entries=$(ls -A /run/netns 2>/dev/null | wc -l)\n"
           "echo state_entries=$(ls -A " + agent_->state_dir() + " 2>/dev/null | wc -l)\n"
           "echo hostname=$(cat /proc/sys/kernel/hostname)\n"
           "echo uid=$(id -u)\n"
           "echo gid=$(id -g)\n"
           "grep -E '^Cap(Eff|Bnd)' /proc/self/status | tr -d ' \\t' | tr : =\n"
           "echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline)\n"
           "echo procs=$(ls -d /proc/[0-9]* | wc -l)\n"
           "echo interfaces=$(ls /sys/class/net | tr '\\n' ' ')\n"
           "echo done=1\n";
  }

  std::string log_path(const std::string& pod, const std::string& container) const {
    return agent_->state_dir() + "/logs/" + ns() + "_" + pod + "_" + container + ".log";
  }

  // The container's `key=value` lines once it printed done=1.
  std::map<std::string, std::string> wait_probe(const std::string& pod, const std::string& container) {
    std::string text;
    for (int attempt = 0; attempt < 300; attempt++) {
      text = read_whole(log_path(pod, container));
      if (text.find("done=1") != std::string::npos) return key_values(text);
      std::this_thread::sleep_for(100ms);
    }
    throw HarnessError("pod " + pod + " container " + container + " never finished its probe; log:\n" + text);
  }

  pid_t init_pid(const std::string& pod) { return agent().pod(ns(), pod)["status"]["pid"].get<pid_t>(); }
};

TEST_F(PodSecurity, ADefaultPodCannotReachOtherPodsTheBpfPinsOrItsOwnNetworkSettings) {
  agent().apply(join_pods({idle_pod("victim")}));
  agent().apply(pod_yaml("prober", container("main", probe_script())));
  auto seen = wait_probe("prober", "main");

  EXPECT_NE(seen["netns_exec"], "0") << "entered another pod's network namespace";
  EXPECT_EQ(seen["netns_entries"], "0") << "/run/netns of the node is visible";
  EXPECT_NE(seen["bpf_pins"], "0") << "listed the agent's BPF pins " << agent().bpf_root();
  EXPECT_EQ(seen["bpf_entries"], "0") << "/sys/fs/bpf shows the node's bpffs";
  EXPECT_EQ(seen["state_entries"], "0") << "the agent's state dir is visible";
  EXPECT_NE(seen["addr_add"], "0") << "changed its own interface address without NET_ADMIN";
  EXPECT_NE(seen["etc_write"], "0") << "wrote into the node's /etc";
  EXPECT_FALSE(std::filesystem::exists(etc_probe()));
  EXPECT_EQ(seen["tmp_write"], "0") << "/tmp stays writable";
  EXPECT_EQ(seen["CapEff"], kDefaultCaps);
  EXPECT_EQ(seen["CapBnd"], kDefaultCaps);
  EXPECT_EQ(seen["uid"], "0");
  EXPECT_EQ(seen["hostname"], "prober") << "Kubernetes sets the pod's name as its hostname";
  EXPECT_THAT(seen["pid1"], HasSubstr("pod-init")) << "PID 1 of the pod is its init";
  EXPECT_LE(std::stoi(seen["procs"]), 6) << "the pod sees only its own processes";
  EXPECT_THAT(seen["interfaces"], HasSubstr("eth0")) << "/sys/class/net shows the pod's interfaces";
  EXPECT_THAT(seen["interfaces"], Not(HasSubstr(agent().host_device()))) << "and not the node's";

  // From the node: the tracked pid is PID 1 of a PID namespace of its own.
  std::string status = read_whole("/proc/" + std::to_string(init_pid("prober")) + "/status");
  std::string nspid = key_values(std::regex_replace(status, std::regex(":\t"), "="))["NSpid"];
  EXPECT_THAT(nspid, testing::EndsWith("\t1")) << "NSpid: " << nspid;
}

TEST_F(PodSecurity, CapabilitiesAddNetAdminLetsAPodChangeItsAddress) {
  agent().apply(join_pods({idle_pod("victim")}));
  agent().apply(pod_yaml("admin", container("main", probe_script(), "{capabilities: {add: [NET_ADMIN]}}")));
  auto seen = wait_probe("admin", "main");
  EXPECT_EQ(seen["addr_add"], "0") << "NET_ADMIN was asked for";
  EXPECT_EQ(seen["CapEff"], kDefaultPlusNetAdmin);
  EXPECT_NE(seen["netns_exec"], "0") << "NET_ADMIN does not open other pods' namespaces";
  EXPECT_NE(seen["bpf_pins"], "0");
}

TEST_F(PodSecurity, RunAsUserAndGroupFollowKubernetesPrecedenceAndDropAllClearsCapabilities) {
  agent().apply(join_pods({idle_pod("victim")}));
  // Pod level says 1000:1000, the first container overrides the user; as in containerd, a
  // non-root user keeps its added capabilities only in the bounding set.
  agent().apply(pod_yaml("users",
                         container("own", probe_script(), "{runAsUser: 2000, capabilities: {add: [NET_ADMIN]}}") +
                             container("inherited", probe_script()) +
                             container("dropped", probe_script(), "{runAsUser: 0, capabilities: {drop: [ALL]}}"),
                         "{runAsUser: 1000, runAsGroup: 1000}"));
  auto own = wait_probe("users", "own");
  EXPECT_EQ(own["uid"], "2000");
  EXPECT_EQ(own["gid"], "1000");
  EXPECT_EQ(own["CapEff"], kNoCaps);
  EXPECT_EQ(own["CapBnd"], kDefaultPlusNetAdmin);
  EXPECT_NE(own["addr_add"], "0");
  EXPECT_EQ(own["tmp_write"], "0") << "/tmp is writable for any user";

  auto inherited = wait_probe("users", "inherited");
  EXPECT_EQ(inherited["uid"], "1000");
  EXPECT_EQ(inherited["gid"], "1000");
  EXPECT_EQ(inherited["CapEff"], kNoCaps);

  auto dropped = wait_probe("users", "dropped");
  EXPECT_EQ(dropped["uid"], "0");
  EXPECT_EQ(dropped["CapEff"], kNoCaps);
  EXPECT_EQ(dropped["CapBnd"], kNoCaps);
  EXPECT_NE(dropped["etc_write"], "0");
}

TEST_F(PodSecurity, PrivilegedGetsEveryCapability) {
  agent().apply(join_pods({idle_pod("victim")}));
  agent().apply(pod_yaml("privileged", container("main", probe_script(false), "{privileged: true}")));
  auto seen = wait_probe("privileged", "main");
  EXPECT_EQ(seen["CapEff"], all_caps());
  EXPECT_EQ(seen["addr_add"], "0");
  EXPECT_EQ(seen["hostname"], "privileged");
  EXPECT_THAT(seen["pid1"], HasSubstr("pod-init")) << "privileged keeps its own PID namespace";
}

TEST_F(PodSecurity, BadSecurityContextsAreRefusedNamingTheField) {
  auto bad_cap = agent().try_apply(pod_yaml("bad", container("main", "true", "{capabilities: {add: [NET_WIZARD]}}")));
  EXPECT_FALSE(bad_cap.ok());
  EXPECT_THAT(bad_cap.err, HasSubstr("spec.containers[0].securityContext.capabilities.add[0]"));
  EXPECT_THAT(bad_cap.err, HasSubstr("NET_WIZARD"));
  auto root = agent().try_apply(pod_yaml("bad", container("main", "true"), "{runAsNonRoot: true}"));
  EXPECT_FALSE(root.ok());
  EXPECT_THAT(root.err, HasSubstr("runAsNonRoot"));
  EXPECT_THAT(agent().pods().dump(), Not(HasSubstr("\"bad\"")));
}

TEST_F(PodSecurity, EveryContainerRunsSharingTheNetworkAndProcessesAndDeleteStopsThemAll) {
  std::string web = "  - name: web\n    command: [" + nlohmann::json(netprobe_bin()).dump() +
                    ", serve, --tcp, \"80\", --udp, \"53\", --name, duo]\n";
  std::string side_script = "until " + netprobe_bin() +
                            " connect tcp 127.0.0.1 80 --message side | grep -q 'duo: side'; do sleep 0.1; done\n"
                            "echo localhost=ok\n"
                            "echo sees_web=$(cat /proc/[0-9]*/comm | grep -c '^netprobe$')\n"
                            "echo hostname=$(cat /proc/sys/kernel/hostname)\n"
                            "echo done=1";
  agent().apply(pod_yaml("duo", web + container("side", side_script)));
  auto side = wait_probe("duo", "side");
  EXPECT_EQ(side["localhost"], "ok") << "containers share the pod's network namespace";
  EXPECT_NE(side["sees_web"], "0") << "containers share the pod's PID namespace";
  EXPECT_EQ(side["hostname"], "duo");
  expect_reachable(node(), pod("duo"), kTcpPort, "tcp");
  EXPECT_TRUE(std::filesystem::exists(log_path("duo", "web")));

  const pid_t init = init_pid("duo");
  std::vector<pid_t> containers = children_of(init);
  EXPECT_EQ(containers.size(), 2u) << "one process per container under the pod's init";

  // The restarted agent still stops every process of the pod.
  agent().restart(SIGKILL);
  for (pid_t pid : containers) EXPECT_FALSE(process_gone(pid)) << "a crashed agent leaves its pods running";
  agent().remove(pod_yaml("duo", web));
  EXPECT_TRUE(process_gone(init)) << "init " << init;
  for (pid_t pid : containers) EXPECT_TRUE(process_gone(pid)) << "container process " << pid;
}

TEST_F(PodSecurity, AFailingSecondContainerFailsTheApplyAndLeavesNothingRunning) {
  // The first container's shell carries a marker in its command line ($0).
  std::string marker = "pilus-e2e-first-" + agent().tag();
  std::string two = "  - name: first\n    command: [/bin/sh, -c, \"sleep 100000; true\", " + marker + "]\n" +
                    "  - name: second\n    command: [\"/nonexistent/pilus-e2e\"]\n";
  auto r = agent().try_apply(pod_yaml("broken", two));
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.err, HasSubstr("container second"));
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/pilus-e2e"));
  EXPECT_THAT(agent().pods().dump(), Not(HasSubstr("\"broken\"")));
  EXPECT_FALSE(netns_exists("pl-" + ns() + "_broken"));
  EXPECT_THAT(run_command({"pgrep", "-f", marker}).out, testing::IsEmpty()) << "the first container was left running";
}

}  // namespace
}  // namespace pilus::e2e
