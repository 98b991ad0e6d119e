// Real containers through pilus-cni: Debian's podman (CNI backend, runc) runs busybox-static
// containers on a rootfs the test builds (no image pull), on a network whose plugin is the
// pilus-cni this build made, talking to this test's own agent. Podman's configuration is private
// to the test (CONTAINERS_CONF, --network-config-dir); containers have unique names and are
// removed by name, whatever happens.
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "e2e/harness.h"

namespace pilus::e2e {
namespace {

namespace fs = std::filesystem;

std::string cni_bin() {
  if (const char* p = getenv("PILUS_CNI_BIN")) return p;
  return PILUS_DEFAULT_CNI_BIN;
}

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

class CniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run_command({"sh", "-c", "command -v podman && command -v runc && test -x /bin/busybox"}).exit_code != 0)
      GTEST_SKIP() << "podman, runc or busybox-static is not installed (scripts/deps.sh installs them)";
    agent_ = std::make_unique<TestAgent>();
    work_ = "/tmp/pilus-cni-" + agent_->tag();
    network_ = "pilus-" + agent_->tag();
    // The rootfs: busybox-static and a page per container for its httpd.
    fs::create_directories(work_ + "/rootfs/bin");
    fs::copy_file("/bin/busybox", work_ + "/rootfs/bin/busybox");
    fs::create_symlink("busybox", work_ + "/rootfs/bin/sh");
    fs::create_directories(work_ + "/bin");
    fs::create_symlink(fs::absolute(cni_bin()), work_ + "/bin/pilus-cni");
    write_file(work_ + "/net.d/" + network_ + ".conflist",
               nlohmann::json{{"cniVersion", "1.0.0"},
                              {"name", network_},
                              {"plugins", {{{"type", "pilus-cni"}, {"socket", agent_->socket()}}}}}
                   .dump(2));
    // What this machine needs (as scripts/install_cni.sh writes it for the system): runc, and
    // ulimits within the hard limits. CONTAINERS_CONF makes podman read this file only.
    write_file(work_ + "/containers.conf",
               "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n"
               "[engine]\nruntime = \"runc\"\n"
               "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"" +
                   work_ + "/bin\"]\nnetwork_config_dir = \"" + work_ + "/net.d\"\n");
  }

  void TearDown() override {
    for (const auto& name : containers_) podman({"rm", "-f", "-t", "0", name});
    if (!work_.empty()) fs::remove_all(work_);
    agent_.reset();
  }

  CommandResult podman(std::vector<std::string> args, std::chrono::milliseconds timeout = 120s) {
    std::vector<std::string> argv = {"env", "CONTAINERS_CONF=" + work_ + "/containers.conf", "podman",
                                     "--network-config-dir", work_ + "/net.d"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, "", timeout);
  }

  std::string name(const std::string& role) const { return "c" + agent_->tag() + "-" + role; }

  // A container serving "<role>" over HTTP on 8080, on the pilus network.
  CommandResult try_run(const std::string& role, const std::map<std::string, std::string>& labels) {
    const std::string n = name(role);
    write_file(work_ + "/rootfs/www/" + n + "/index.html", role + "\n");
    containers_.push_back(n);
    std::vector<std::string> args = {"run", "-d", "--name", n, "--network", network_};
    for (const auto& [k, v] : labels) args.insert(args.end(), {"--label", k + "=" + v});
    args.insert(args.end(), {"--rootfs", work_ + "/rootfs", "/bin/busybox", "httpd", "-f", "-p", "8080", "-h",
                             "/www/" + n});
    return podman(args);
  }
  void run(const std::string& role, const std::map<std::string, std::string>& labels) {
    CommandResult r = try_run(role, labels);
    ASSERT_TRUE(r.ok()) << r.describe() << "\nagent log:\n" << agent_->stderr_log();
  }

  nlohmann::json pod(const std::string& role) const { return agent_->pod("default", name(role)); }
  std::string ip(const std::string& role) const { return pod(role)["status"]["podIP"]; }

  // An HTTP GET from inside a container with busybox's nc (its static wget crashes resolving
  // without NSS); the whole response.
  CommandResult fetch(const std::string& from_role, const std::string& address, int timeout_s = 3) {
    const std::string host = address.substr(0, address.find(':')), port = address.substr(address.find(':') + 1);
    return podman({"exec", name(from_role), "/bin/busybox", "sh", "-c",
                   "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w " + std::to_string(timeout_s) + " " + host +
                       " " + port});
  }
  static bool answered(const CommandResult& r, const std::string& body) {
    return r.out.find("200 OK") != std::string::npos && r.out.ends_with("\r\n\r\n" + body + "\n");
  }
  void expect_reaches(const std::string& from_role, const std::string& address, const std::string& body) {
    CommandResult r = fetch(from_role, address);
    EXPECT_TRUE(answered(r, body)) << r.describe();
  }
  void expect_no_answer(const std::string& from_role, const std::string& address) {
    CommandResult r = fetch(from_role, address, 2);
    EXPECT_EQ(r.out, "") << r.describe();
  }

  // Whether the endpoints map or the ipcache holds the address.
  bool endpoint_in_maps(const std::string& address) const {
    if (agent_->bpf_endpoints().dump().find("\"ip\":\"" + address + "\"") != std::string::npos) return true;
    CommandResult r = agent_->pilus({"bpf", "ipcache", "-o", "json"});
    if (!r.ok()) throw HarnessError(r.describe());
    return nlohmann::json::parse(r.out).dump().find("\"" + address + "/32\"") != std::string::npos;
  }

  std::string policy_denying_ingress_to(const std::string& app) const {
    return "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: only-from-nobody\n"
           "  namespace: default\nspec:\n  endpointSelector:\n    matchLabels:\n      app: " +
           app + "\n  ingress:\n  - fromEndpoints:\n    - matchLabels:\n        app: nobody\n";
  }

  // Drop flows towards a pod, from `pilus observe -o json`.
  bool drop_flow_to(const std::string& pod_key, const std::string& from_key) const {
    for (int attempt = 0; attempt < 100; attempt++) {
      CommandResult r = agent_->pilus({"observe", "--all", "-o", "json", "--verdict", "DROPPED", "--to-pod", pod_key});
      std::istringstream lines(r.out);
      for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.contains("flow")) continue;
        const auto& f = j["flow"];
        if (f.value("source", nlohmann::json::object()).value("pod_name", "") == from_key.substr(from_key.find('/') + 1) &&
            f.value("drop_reason_desc", "") == "POLICY_DENIED")
          return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::unique_ptr<TestAgent> agent_;
  std::string work_, network_;
  std::vector<std::string> containers_;
};

TEST_F(CniTest, TwoContainersGetAddressesAndIdentitiesFromTheirLabelsAndTalk) {
  run("web", {{"app", "web"}});
  run("client", {{"app", "client"}, {"note", "a value with spaces is no identity label"}});
  auto web = pod("web"), client = pod("client");
  EXPECT_EQ(web["status"]["owner"], "runtime");
  EXPECT_EQ(web["metadata"]["labels"], nlohmann::json({{"app", "web"}}));
  EXPECT_EQ(client["metadata"]["labels"], nlohmann::json({{"app", "client"}}));
  EXPECT_NE(web["status"]["identity"], client["status"]["identity"]);
  // The address podman reports is pilus's.
  CommandResult inspect = podman({"inspect", "--format", "{{json .NetworkSettings.Networks}}", name("web")});
  ASSERT_TRUE(inspect.ok()) << inspect.describe();
  EXPECT_NE(inspect.out.find(ip("web")), std::string::npos) << inspect.out;
  EXPECT_EQ(ip("web").rfind(agent_->pod_cidr().substr(0, agent_->pod_cidr().rfind('.')), 0), 0u);
  // Their identities carry their labels.
  bool found = false;
  for (const auto& id : agent_->identities())
    if (id.dump().find("k8s:app=web") != std::string::npos && id.dump().find(std::to_string(web["status"]["identity"].get<int>())) != std::string::npos)
      found = true;
  EXPECT_TRUE(found) << agent_->identities().dump();
  expect_reaches("client", ip("web") + ":8080", "web");
  expect_reaches("web", ip("client") + ":8080", "client");
  // Metrics count them as endpoints, and their packets per endpoint.
  CommandResult metrics = run_command({"curl", "-s", "http://" + agent_->metrics_addr() + "/metrics"});
  EXPECT_NE(metrics.out.find("\ncilium_endpoint 2\n"), std::string::npos) << metrics.describe();
  EXPECT_GT(agent_->counted_packets("FORWARDED", web["status"]["endpointID"].get<uint64_t>()), 0u);
  // `get pods` names the owner.
  CommandResult table = agent_->pilus({"get", "pods", "-n", "default"});
  EXPECT_NE(table.out.find("OWNER"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("runtime"), std::string::npos) << table.out;
}

TEST_F(CniTest, PolicyByLabelDeniesOneDirectionAndTheFlowShowsTheDrop) {
  run("web", {{"app", "web"}});
  run("client", {{"app", "client"}});
  agent_->apply(policy_denying_ingress_to("client"));
  expect_reaches("client", ip("web") + ":8080", "web");
  expect_no_answer("web", ip("client") + ":8080");
  EXPECT_TRUE(drop_flow_to("default/" + name("client"), "default/" + name("web")))
      << agent_->pilus({"observe", "--all"}).out;
}

TEST_F(CniTest, AContainerMatchingAServiceSelectorIsItsBackend) {
  run("web", {{"app", "web"}});
  run("client", {{"app", "client"}});
  agent_->apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  selector:\n"
                "    app: web\n  ports:\n  - port: 80\n    targetPort: 8080\n");
  CommandResult svc = agent_->pilus({"get", "services", "web", "-n", "default", "-o", "json"});
  ASSERT_TRUE(svc.ok()) << svc.describe();
  auto j = nlohmann::json::parse(svc.out);
  EXPECT_NE(j["status"]["backends"].dump().find(ip("web")), std::string::npos) << svc.out;
  expect_reaches("client", j["spec"]["clusterIP"].get<std::string>() + ":80", "web");
}

TEST_F(CniTest, RmRemovesTheEndpointAndItsMapEntries) {
  run("web", {{"app", "web"}});
  const std::string address = ip("web");
  const std::string link = pod("web")["status"]["hostInterface"];
  const std::string netns = pod("web")["status"]["netns"];
  ASSERT_TRUE(endpoint_in_maps(address));
  CommandResult rm = podman({"rm", "-f", "-t", "0", name("web")});
  ASSERT_TRUE(rm.ok()) << rm.describe();
  for (const auto& p : agent_->pods()) EXPECT_NE(p["metadata"]["name"], name("web"));
  EXPECT_FALSE(endpoint_in_maps(address));
  EXPECT_FALSE(link_exists(link));
  EXPECT_FALSE(netns_exists(netns));
}

TEST_F(CniTest, RestartKeepsAddressPolicyAndIdentity) {
  run("web", {{"app", "web"}});
  run("client", {{"app", "client"}});
  agent_->apply(policy_denying_ingress_to("client"));
  auto before = pod("client");
  CommandResult restart = podman({"restart", "-t", "0", name("client")});
  ASSERT_TRUE(restart.ok()) << restart.describe();
  auto after = pod("client");
  EXPECT_EQ(after["status"]["podIP"], before["status"]["podIP"]);
  EXPECT_EQ(after["status"]["identity"], before["status"]["identity"]);
  EXPECT_NE(after["status"]["hostInterface"], nlohmann::json());
  expect_reaches("client", ip("web") + ":8080", "web");
  expect_no_answer("web", ip("client") + ":8080");
}

TEST_F(CniTest, AKilledAgentLeavesContainersConnectedAndAdoptsThemOnRestart) {
  run("web", {{"app", "web"}});
  run("client", {{"app", "client"}});
  auto web = pod("web");
  agent_->stop(SIGKILL);
  expect_reaches("client", web["status"]["podIP"].get<std::string>() + ":8080", "web");
  agent_->start();
  auto adopted = pod("web");
  EXPECT_EQ(adopted["status"]["podIP"], web["status"]["podIP"]);
  EXPECT_EQ(adopted["status"]["identity"], web["status"]["identity"]);
  EXPECT_EQ(adopted["status"]["owner"], "runtime");
  expect_reaches("client", ip("web") + ":8080", "web");
  // Adopted: the runtime's DEL finds it.
  const std::string address = ip("web");
  ASSERT_TRUE(podman({"rm", "-f", "-t", "0", name("web")}).ok());
  EXPECT_FALSE(endpoint_in_maps(address));
}

TEST_F(CniTest, ADeclaredPodGivesTheLabelsAndItsChangesChangeTheIdentity) {
  auto declared = [&](const std::string& app) {
    return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name("web") +
           "\n  namespace: default\n  labels:\n    app: " + app +
           "\nspec:\n  runtimeClassName: pilus-cni\n  containers:\n  - name: web\n    image: busybox\n";
  };
  agent_->apply(declared("declared"));
  run("web", {{"app", "own"}});
  auto first = pod("web");
  EXPECT_EQ(first["metadata"]["labels"], nlohmann::json({{"app", "declared"}}));
  agent_->apply(declared("changed"));
  auto second = pod("web");
  EXPECT_EQ(second["metadata"]["labels"], nlohmann::json({{"app", "changed"}}));
  EXPECT_NE(second["status"]["identity"], first["status"]["identity"]);
  agent_->remove(declared("changed"));
  EXPECT_EQ(pod("web")["metadata"]["labels"], nlohmann::json({{"app", "own"}}));
}

// The plugin itself, as the spec defines its protocol.
TEST_F(CniTest, ThePluginAnswersPerTheSpec) {
  const std::string conf = nlohmann::json{{"cniVersion", "1.0.0"}, {"name", network_}, {"type", "pilus-cni"},
                                          {"socket", agent_->socket()}}
                               .dump();
  auto plugin = [&](const std::string& command, const std::string& stdin_text, std::vector<std::string> env) {
    std::vector<std::string> argv = {"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=" + command,
                                     "CNI_PATH=" + work_ + "/bin"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(cni_bin());
    return run_command(argv, stdin_text);
  };
  CommandResult version = plugin("VERSION", R"({"cniVersion":"1.0.0"})", {});
  ASSERT_TRUE(version.ok()) << version.describe();
  EXPECT_NE(nlohmann::json::parse(version.out)["supportedVersions"].dump().find("1.0.0"), std::string::npos);
  CommandResult old = plugin("ADD", R"({"cniVersion":"0.1.0","name":"x","type":"pilus-cni"})", {});
  EXPECT_FALSE(old.ok());
  EXPECT_EQ(nlohmann::json::parse(old.out)["code"], 1) << old.out;

  run("web", {{"app", "web"}});
  CommandResult netns = podman({"inspect", "--format", "{{.NetworkSettings.SandboxKey}}", name("web")});
  ASSERT_TRUE(netns.ok()) << netns.describe();
  std::string path = netns.out.substr(0, netns.out.find('\n'));
  CommandResult id = podman({"inspect", "--format", "{{.Id}}", name("web")});
  std::string container_id = id.out.substr(0, id.out.find('\n'));
  std::vector<std::string> env = {"CNI_CONTAINERID=" + container_id, "CNI_NETNS=" + path, "CNI_IFNAME=eth0",
                                  "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=" + name("web")};
  // ADD again: the same result.
  CommandResult again = plugin("ADD", conf, env);
  ASSERT_TRUE(again.ok()) << again.describe();
  auto result = nlohmann::json::parse(again.out);
  EXPECT_EQ(result["cniVersion"], "1.0.0");
  EXPECT_EQ(result["ips"][0]["address"], ip("web") + "/32");
  EXPECT_EQ(result["ips"][0]["gateway"], agent_->router_ip());
  EXPECT_EQ(result["interfaces"][1]["name"], "eth0");
  EXPECT_EQ(result["interfaces"][1]["sandbox"], path);
  EXPECT_EQ(result["routes"][0]["dst"], "0.0.0.0/0");
  // CHECK with that result as prevResult.
  nlohmann::json check_conf = nlohmann::json::parse(conf);
  check_conf["prevResult"] = result;
  CommandResult check = plugin("CHECK", check_conf.dump(), env);
  EXPECT_TRUE(check.ok()) << check.describe();
  // CHECK notices a removed route inside the container.
  ASSERT_TRUE(run_command({"nsenter", "--net=" + path, "ip", "route", "del", "default"}).ok());
  CommandResult broken = plugin("CHECK", check_conf.dump(), env);
  EXPECT_FALSE(broken.ok());
  EXPECT_NE(broken.out.find("default route"), std::string::npos) << broken.out;
  // STATUS: the agent is up.
  EXPECT_TRUE(plugin("STATUS", conf, {}).ok());
  // DEL of an unknown container succeeds.
  CommandResult unknown = plugin("DEL", conf, {"CNI_CONTAINERID=nosuch", "CNI_IFNAME=eth0", "CNI_ARGS=K8S_POD_NAME=nosuch"});
  EXPECT_TRUE(unknown.ok()) << unknown.describe();
  // GC (CNI 1.1): the endpoints of attachments not listed as valid go.
  nlohmann::json gc_conf = nlohmann::json::parse(conf);
  gc_conf["cniVersion"] = "1.1.0";
  gc_conf["cni.dev/valid-attachments"] = {{{"containerID", container_id}, {"ifname", "eth0"}}};
  CommandResult keep = plugin("GC", gc_conf.dump(), {});
  EXPECT_TRUE(keep.ok()) << keep.describe();
  EXPECT_NO_THROW(pod("web"));
  gc_conf["cni.dev/valid-attachments"] = nlohmann::json::array();
  CommandResult gc = plugin("GC", gc_conf.dump(), {});
  EXPECT_TRUE(gc.ok()) << gc.describe();
  for (const auto& p : agent_->pods()) EXPECT_NE(p["metadata"]["name"], name("web"));
  // Agent down: a clear error, and nothing of an endpoint made.
  agent_->stop(SIGKILL);
  CommandResult down = plugin("ADD", conf,
                              {"CNI_CONTAINERID=" + container_id + "x", "CNI_NETNS=" + path, "CNI_IFNAME=eth1",
                               "CNI_ARGS=K8S_POD_NAME=" + name("other")});
  EXPECT_FALSE(down.ok());
  auto err = nlohmann::json::parse(down.out);
  EXPECT_EQ(err["code"], 11) << down.out;
  EXPECT_NE(err["msg"].get<std::string>().find("cannot reach the pilus agent"), std::string::npos) << down.out;
  EXPECT_FALSE(netns_exists("pl-default_" + name("other")));
  EXPECT_FALSE(run_command({"nsenter", "--net=" + path, "ip", "link", "show", "eth1"}).ok());
  CommandResult status = plugin("STATUS", conf, {});
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(nlohmann::json::parse(status.out)["code"], 50) << status.out;
  agent_->start();
}

}  // namespace
}  // namespace pilus::e2e
