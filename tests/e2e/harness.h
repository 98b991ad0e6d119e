// End-to-end harness: a private pilus agent per test (own state dir, socket, pins, host
// device, cgroup, pod CIDR and Kubernetes namespace) plus the processes scenarios run.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pilus::e2e {

using namespace std::chrono_literals;

// Harness failures (an agent that does not start, a command that should have
// worked) are exceptions: gtest reports them with the message and the test stops.
struct HarnessError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The one wait of the e2e tests: polls `condition` every `poll` until it holds (true) or
// `deadline` passed (false: the caller's assertion says what was expected). Deadlines are
// generous, as the machine may be loaded; never a fixed sleep in place of a condition.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline = 60s,
                std::chrono::milliseconds poll = 100ms);

struct CommandResult {
  std::vector<std::string> argv;
  int exit_code = -1;  // 128 + signal when killed by one
  bool timed_out = false;
  std::string out;
  std::string err;

  bool ok() const { return exit_code == 0 && !timed_out; }
  // The command line, how it ended and its output, for failure messages.
  std::string describe() const;
};

// A child process whose stdout and stderr are collected through pipes. Output
// is read only in wait(), so a background child must print little (a pipe
// buffer's worth) before then. Dropped while running, it is killed by its pid.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv, const std::string& stdin_text = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // True once the child has exited (it stays unreaped until wait()).
  bool exited() const;
  // Feeds stdin, collects output until exit; SIGKILLs the child after `timeout`.
  CommandResult wait(std::chrono::milliseconds timeout);
  // The stdout it printed so far, without waiting (for waits on a long-running child's output;
  // wait() still returns all of it).
  const std::string& output_so_far();

 private:
  std::vector<std::string> argv_;
  std::string stdin_text_;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string out_so_far_;
};

CommandResult run_command(const std::vector<std::string>& argv, const std::string& stdin_text = "",
                          std::chrono::milliseconds timeout = 30s);

// The pilus and netprobe binaries: PILUS_BIN / PILUS_NETPROBE, else the ones this build made.
std::string pilus_bin();
std::string netprobe_bin();

// A pod manifest as a user would write it; yaml() renders it.
struct PodManifest {
  std::string ns;
  std::string name;
  std::map<std::string, std::string> labels;
  std::vector<std::string> command;  // empty: the netns is left idle
  std::map<std::string, std::string> annotations;
  // Appended after the container as written: "    ports: [...]\n" (the container's),
  // "  serviceAccountName: x\n" (the pod spec's).
  std::string extra_yaml;

  std::string yaml() const;
};
std::string namespace_yaml(const std::string& name);
// One multi-document YAML stream, in order.
std::string join_documents(const std::vector<std::string>& documents);
std::string join_pods(const std::vector<PodManifest>& pods);

// Kernel-side facts checked by scenarios, read without going through pilus.
bool netns_exists(const std::string& name);
std::vector<std::string> netns_with_prefix(const std::string& prefix);
bool link_exists(const std::string& name);
bool process_gone(pid_t pid);  // no such process, or a zombie nobody reaped yet
bool process_in_netns(pid_t pid, const std::string& netns);
// "127.0.0.1:PORT" with a port free at the time of the call.
std::string free_loopback_addr();
std::string cgroup2_mount();

// One pilus agent started by this test, with names nobody else uses. Its
// destructor always runs `pilus cleanup` for its state dir and kills only the
// agent pid it started; it prints the agent's logs when the test failed.
class TestAgent {
 public:
  struct Options {
    int pod_cidr_prefix = 24;  // a random unused 10.244.<100..199>.0/<prefix>
    std::vector<std::string> agent_args;  // more `pilus agent` flags (map sizes, ...)
    // Runs the agent through this command, which must exec it (same pid): e.g. {"prlimit", "--nofile=64:256", "--"}.
    std::vector<std::string> launcher;
  };
  TestAgent() : TestAgent(Options{}) {}
  explicit TestAgent(Options options);
  ~TestAgent();
  TestAgent(const TestAgent&) = delete;
  TestAgent& operator=(const TestAgent&) = delete;

  // Names this agent owns.
  const std::string& tag() const { return tag_; }
  std::string ns() const { return "e2e-" + tag_; }  // the test's Kubernetes namespace
  const std::string& pod_cidr() const { return pod_cidr_; }
  const std::string& router_ip() const { return router_ip_; }
  const std::string& state_dir() const { return state_dir_; }
  const std::string& socket() const { return socket_; }
  const std::string& bpf_root() const { return bpf_root_; }
  const std::string& host_device() const { return host_device_; }
  const std::string& metrics_addr() const { return metrics_addr_; }
  std::string cgroup_dir() const { return cgroup2_mount() + "/" + cgroup_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Lifecycle of the agent process.
  void start();
  // Sends `signal` and waits for the agent to exit; returns its exit code (128+sig when killed).
  int stop(int signal);
  void restart(int signal);
  // `pilus cleanup --state-dir`; reaps the agent it stops.
  CommandResult cleanup();

  // Client commands (with this agent's --socket).
  CommandResult pilus(std::vector<std::string> args, const std::string& stdin_text = "") const;
  CommandResult try_apply(const std::string& yaml) const;
  CommandResult try_remove(const std::string& yaml) const;
  void apply(const std::string& yaml) const;   // throws with pilus's error on failure
  void remove(const std::string& yaml) const;  // `pilus delete -f -`
  nlohmann::json pods() const;                 // the "items" of `get pods -o json`
  nlohmann::json pod(const std::string& ns, const std::string& name) const;
  std::string pod_ip(const std::string& ns, const std::string& name) const;
  nlohmann::json identities() const;  // the "items" of `get identities -o json`
  nlohmann::json bpf_endpoints() const;
  // Packets the datapath counted under a reason (FORWARDED, POLICY_DENIED, ...) for one
  // endpoint id (none: every endpoint, and 0 for what no endpoint owns) and direction
  // ("ingress", "egress", or "" for both).
  uint64_t counted_packets(const std::string& reason, std::optional<uint64_t> endpoint_id = std::nullopt,
                           const std::string& direction = "") const;
  nlohmann::json bpf_conntrack() const;
  // Packets conntrack counted from `source_ip` towards `destination` ("IP:PORT", or "" for any),
  // summed over the egress entries: traffic seen by the datapath, for waits on a live stream.
  uint64_t tracked_packets(const std::string& source_ip, const std::string& destination = "") const;

  CommandResult run_in_pod(const std::string& ns, const std::string& name, const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout = 30s) const;
  // Waits until the pod listens on port/proto ("tcp" or "udp"), read from its own socket table
  // (not through the datapath, so waiting never hides a connectivity failure); throws otherwise.
  void wait_listening(const std::string& ns, const std::string& name, int port, const std::string& proto = "tcp") const;

  std::string stdout_log() const;
  std::string stderr_log() const;

 private:
  void wait_until_serving();
  void reap(std::chrono::milliseconds timeout, int* exit_code);
  void tear_down();
  std::vector<std::string> remove_leftovers();

  Options options_;
  std::string tag_, work_dir_, state_dir_, socket_, bpf_root_, host_device_, cgroup_, pod_cidr_, router_ip_,
      metrics_addr_;
  pid_t pid_ = -1;
  bool cleaned_up_ = false;
};

// A TCP and UDP echo server in the host namespace, bound to one address only
// (so it cannot clash with anything else on the machine), answering like
// netprobe ("NAME: <msg>"). Killed by its pid when dropped.
class HostServer {
 public:
  HostServer(const std::string& ip, int port, const std::string& name);
  ~HostServer();
  HostServer(const HostServer&) = delete;
  HostServer& operator=(const HostServer&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

}  // namespace pilus::e2e
