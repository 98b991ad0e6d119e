// Harness implementation: child processes, manifests, the per-test agent and its guaranteed cleanup.
#include "e2e/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

extern char** environ;

namespace pilus::e2e {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string tail_lines(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos != std::string::npos && pos > 0; n++) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

void make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) < 0) throw HarnessError(std::string("pipe: ") + strerror(errno));
}

std::vector<char*> c_argv(std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (auto& a : argv) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

int exit_code_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// waitpid with a deadline; true when the child was reaped.
bool wait_for_exit(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

}  // namespace

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                std::chrono::milliseconds poll) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(poll);
  }
}

namespace {

std::string random_tag() {
  std::random_device rd;
  char buf[9];
  snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
  return buf;
}

// A 10.244.N.0/prefix that no route or address on the node mentions, so this
// agent's pods cannot collide with another agent running side by side.
std::string unused_pod_cidr(int prefix, std::string* router_ip) {
  std::string taken = run_command({"ip", "-4", "route", "show", "table", "all"}).out +
                      run_command({"ip", "-4", "addr", "show"}).out;
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 200; attempt++) {
    int n = 100 + static_cast<int>(rng() % 100);
    std::string net = "10.244." + std::to_string(n) + ".";
    if (taken.find(net) != std::string::npos) continue;
    *router_ip = net + "1";
    return net + "0/" + std::to_string(prefix);
  }
  throw HarnessError("no unused 10.244.<100..199>.0 network left for a test agent");
}

// A loopback port nothing listens on now; kept for the agent's whole life so
// that restarts serve metrics where they did before.

json parse_json(const CommandResult& r) {
  if (!r.ok()) throw HarnessError(r.describe());
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded()) throw HarnessError("not JSON: " + r.describe());
  return j;
}

std::string quoted(const std::string& s) { return json(s).dump(); }  // a JSON string is a YAML flow scalar

}  // namespace

std::string free_loopback_addr() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) < 0) {
    close(fd);
    throw HarnessError(std::string("no free loopback port: ") + strerror(errno));
  }
  close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

// ---------------------------------------------------------------- processes

std::string CommandResult::describe() const {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  std::string how = timed_out ? "timed out" : "exited " + std::to_string(exit_code);
  return "`" + cmd + "` " + how + "\n  stdout: " + out + "\n  stderr: " + err;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, const std::string& stdin_text)
    : argv_(std::move(argv)), stdin_text_(stdin_text) {
  int in[2], out[2], err[2];
  make_pipe(in);
  make_pipe(out);
  make_pipe(err);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<std::string> copy = argv_;
  auto cargv = c_argv(copy);
  int rc = posix_spawnp(&pid_, cargv[0], &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  if (rc != 0) {
    close(in_), close(out_), close(err_);
    throw HarnessError("cannot start " + argv_[0] + ": " + strerror(rc));
  }
  if (stdin_text_.empty()) close(in_), in_ = -1;
}

ChildProcess::~ChildProcess() {
  for (int fd : {in_, out_, err_})
    if (fd >= 0) close(fd);
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool ChildProcess::exited() const {
  siginfo_t info{};
  return pid_ <= 0 || (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0);
}

const std::string& ChildProcess::output_so_far() {
  while (out_ >= 0) {
    pollfd fd{out_, POLLIN, 0};
    if (poll(&fd, 1, 0) <= 0 || !(fd.revents & (POLLIN | POLLHUP | POLLERR))) break;
    char buf[4096];
    ssize_t n = read(out_, buf, sizeof buf);
    if (n <= 0) {
      close(out_);
      out_ = -1;
      break;
    }
    out_so_far_.append(buf, static_cast<size_t>(n));
  }
  return out_so_far_;
}

CommandResult ChildProcess::wait(std::chrono::milliseconds timeout) {
  CommandResult r;
  r.argv = argv_;
  r.out = std::move(out_so_far_);
  out_so_far_.clear();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t written = 0;
  // SIGPIPE would kill the test binary if the child exits before reading its stdin.
  signal(SIGPIPE, SIG_IGN);
  while (out_ >= 0 || err_ >= 0 || in_ >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      r.timed_out = true;
      break;
    }
    pollfd fds[3] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}, {in_, POLLOUT, 0}};
    if (poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; i++) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        (i == 0 ? out_ : err_) = -1;
      }
    }
    if (fds[2].revents) {
      ssize_t n = fds[2].revents & POLLOUT ? write(in_, stdin_text_.data() + written, stdin_text_.size() - written) : -1;
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == stdin_text_.size()) close(in_), in_ = -1;
    }
  }
  int status = 0;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (r.timed_out || !wait_for_exit(pid_, std::max(left, 0ms), &status)) {
    r.timed_out = true;
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  r.exit_code = exit_code_of(status);
  pid_ = -1;
  return r;
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& stdin_text,
                          std::chrono::milliseconds timeout) {
  ChildProcess child(argv, stdin_text);
  return child.wait(timeout);
}

// The environment wins; the build's own binaries otherwise.
static std::string binary_path(const char* env, const char* built) {
  const char* p = std::getenv(env);
  return p && *p ? p : built;
}

std::string pilus_bin() { return binary_path("PILUS_BIN", PILUS_DEFAULT_BIN); }

std::string netprobe_bin() { return binary_path("PILUS_NETPROBE", PILUS_DEFAULT_NETPROBE); }

// ---------------------------------------------------------------- manifests

std::string PodManifest::yaml() const {
  std::string y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + quoted(name) + "\n  namespace: " + quoted(ns) + "\n";
  if (!labels.empty()) {
    y += "  labels:\n";
    for (const auto& [k, v] : labels) y += "    " + quoted(k) + ": " + quoted(v) + "\n";
  }
  if (!annotations.empty()) {
    y += "  annotations:\n";
    for (const auto& [k, v] : annotations) y += "    " + quoted(k) + ": " + quoted(v) + "\n";
  }
  y += "spec:\n  containers:\n  - name: main\n";
  if (!command.empty()) {
    y += "    command: [";
    for (size_t i = 0; i < command.size(); i++) y += (i ? ", " : "") + quoted(command[i]);
    y += "]\n";
  }
  return y + extra_yaml;
}

std::string namespace_yaml(const std::string& name) {
  return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + quoted(name) + "\n";
}

std::string join_documents(const std::vector<std::string>& documents) {
  std::string out;
  for (const auto& d : documents) out += "---\n" + d;
  return out;
}

std::string join_pods(const std::vector<PodManifest>& pods) {
  std::vector<std::string> docs;
  for (const auto& p : pods) docs.push_back(p.yaml());
  return join_documents(docs);
}

// ---------------------------------------------------------------- kernel facts

bool netns_exists(const std::string& name) { return fs::exists("/run/netns/" + name); }

std::vector<std::string> netns_with_prefix(const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
    std::string n = e.path().filename().string();
    if (n.starts_with(prefix)) out.push_back(n);
  }
  return out;
}

bool link_exists(const std::string& name) { return if_nametoindex(name.c_str()) != 0; }

bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) return true;
  auto paren = content.rfind(')');
  return paren != std::string::npos && paren + 2 < content.size() && content[paren + 2] == 'Z';
}

bool process_in_netns(pid_t pid, const std::string& netns) {
  struct stat a{}, b{};
  if (stat(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), &a) != 0) return false;
  if (stat(("/run/netns/" + netns).c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string cgroup2_mount() {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest))
    if (type == "cgroup2") return dir;
  throw HarnessError("no cgroup2 mount on this node");
}

// ---------------------------------------------------------------- agent

TestAgent::TestAgent(Options options) : options_(options) {
  if (geteuid() != 0) throw HarnessError("e2e tests need root (network namespaces, BPF, cgroups)");
  tag_ = random_tag();
  work_dir_ = "/tmp/pilus-e2e-" + tag_;
  state_dir_ = work_dir_ + "/state";
  socket_ = work_dir_ + "/pilus.sock";
  bpf_root_ = "/sys/fs/bpf/pilus-e2e-" + tag_;
  host_device_ = "pe" + tag_;
  cgroup_ = "pilus-e2e-" + tag_;
  pod_cidr_ = unused_pod_cidr(options_.pod_cidr_prefix, &router_ip_);
  metrics_addr_ = free_loopback_addr();
  fs::create_directories(work_dir_);
  try {
    start();
    apply(namespace_yaml(ns()));
  } catch (...) {
    // A constructor that throws gets no destructor: clean up here.
    std::cerr << "agent " << tag_ << " failed to start; stderr:\n" << stderr_log() << "\nstdout:\n" << stdout_log();
    tear_down();
    throw;
  }
}

TestAgent::~TestAgent() {
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- agent " << tag_ << " (pod CIDR " << pod_cidr_ << ") stderr, last lines:\n"
              << tail_lines(stderr_log(), 150) << "---- stdout, last lines:\n"
              << tail_lines(stdout_log(), 150) << "----\n";
  }
  tear_down();
}

std::string TestAgent::stdout_log() const { return read_file(work_dir_ + "/agent.stdout.log"); }
std::string TestAgent::stderr_log() const { return read_file(work_dir_ + "/agent.stderr.log"); }

void TestAgent::start() {
  if (running()) throw HarnessError("agent " + tag_ + " is already running");
  std::vector<std::string> argv = {pilus_bin(), "agent",          "--state-dir", state_dir_,   "--socket",
                                   socket_,     "--bpf-root",     bpf_root_,     "--host-device", host_device_,
                                   "--cgroup",  cgroup_,          "--pod-cidr",  pod_cidr_,    "--metrics-addr",
                                   metrics_addr_};
  argv.insert(argv.end(), options_.agent_args.begin(), options_.agent_args.end());
  argv.insert(argv.begin(), options_.launcher.begin(), options_.launcher.end());
  std::string out_log = work_dir_ + "/agent.stdout.log", err_log = work_dir_ + "/agent.stderr.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  auto cargv = c_argv(argv);
  int rc = posix_spawn(&pid_, cargv[0], &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw HarnessError("cannot start the agent: " + std::string(strerror(rc)));
  }
  wait_until_serving();
}

void TestAgent::wait_until_serving() {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  CommandResult last;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw HarnessError("agent exited with " + std::to_string(exit_code_of(status)) + " before serving; stderr:\n" +
                         stderr_log() + "\nstdout:\n" + stdout_log());
    }
    // A socket file alone proves nothing: a SIGKILLed agent leaves its old one behind.
    last = pilus({"status", "-o", "json"});
    if (last.ok()) return;
    std::this_thread::sleep_for(100ms);
  }
  throw HarnessError("agent did not serve its API within 30s; last try: " + last.describe());
}

void TestAgent::reap(std::chrono::milliseconds timeout, int* exit_code) {
  int status = 0;
  if (!wait_for_exit(pid_, timeout, &status)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  if (exit_code) *exit_code = exit_code_of(status);
  pid_ = -1;
}

int TestAgent::stop(int signal) {
  if (!running()) throw HarnessError("agent " + tag_ + " is not running");
  kill(pid_, signal);
  int code = -1;
  reap(20s, &code);
  return code;
}

void TestAgent::restart(int signal) {
  stop(signal);
  start();
}

CommandResult TestAgent::cleanup() {
  // Without the agent's saved settings `pilus cleanup` falls back to the
  // default names (cgroup "pilus", /sys/fs/bpf/pilus, ...), which may belong
  // to someone else's agent: only ask it when this agent got that far.
  CommandResult r;
  if (fs::exists(state_dir_ + "/store.db") || fs::exists(state_dir_ + "/config")) {  // new or old layout
    r = run_command({pilus_bin(), "--socket", socket_, "cleanup", "--state-dir", state_dir_}, "", 60s);
  } else {
    r.exit_code = 0;
    r.out = "no saved agent settings in " + state_dir_ + ": nothing for pilus cleanup";
  }
  // cleanup stops the agent through its pidfile; it is our child, so reap it here.
  if (running()) reap(r.ok() ? 5s : 0ms, nullptr);
  cleaned_up_ = true;
  return r;
}

// Whatever `pilus cleanup` left behind, found by the names this agent owns.
std::vector<std::string> TestAgent::remove_leftovers() {
  std::vector<std::string> removed;
  for (const auto& n : netns_with_prefix("pl-" + ns())) {
    run_command({"ip", "netns", "delete", n});  // takes the pod's veth pair with it
    removed.push_back("netns " + n);
  }
  if (link_exists(host_device_)) {
    run_command({"ip", "link", "delete", host_device_});
    removed.push_back("link " + host_device_);
  }
  std::error_code ec;
  if (fs::exists(bpf_root_, ec)) {
    fs::remove_all(bpf_root_, ec);
    removed.push_back("pins " + bpf_root_);
  }
  std::string cg = cgroup2_mount() + "/" + cgroup_;
  if (fs::exists(cg, ec)) {
    // Only processes in this agent's own cgroup: its pods.
    for (int attempt = 0; attempt < 50; attempt++) {
      std::ifstream procs(cg + "/cgroup.procs");
      int pid, n = 0;
      while (procs >> pid) kill(pid, SIGKILL), n++;
      if (n == 0) break;
      std::this_thread::sleep_for(20ms);
    }
    rmdir(cg.c_str());
    removed.push_back("cgroup " + cg);
  }
  if (fs::exists(state_dir_, ec)) removed.push_back("state dir " + state_dir_);
  return removed;
}

void TestAgent::tear_down() {
  try {
    CommandResult r = cleaned_up_ ? CommandResult{{}, 0} : cleanup();
    if (!r.ok()) ADD_FAILURE() << "pilus cleanup failed: " << r.describe();
    if (running()) {
      kill(pid_, SIGKILL);
      reap(5s, nullptr);
    }
    auto leftovers = remove_leftovers();
    if (!leftovers.empty()) {
      std::string list;
      for (const auto& l : leftovers) list += "\n  " + l;
      ADD_FAILURE() << "pilus cleanup left these behind (the harness removed them):" << list;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "tearing down agent " << tag_ << ": " << e.what();
  }
  std::error_code ec;
  fs::remove_all(work_dir_, ec);
}

CommandResult TestAgent::pilus(std::vector<std::string> args, const std::string& stdin_text) const {
  args.insert(args.begin(), {pilus_bin(), "--socket", socket_});
  return run_command(args, stdin_text, 60s);
}

CommandResult TestAgent::try_apply(const std::string& yaml) const { return pilus({"apply", "-f", "-"}, yaml); }
CommandResult TestAgent::try_remove(const std::string& yaml) const { return pilus({"delete", "-f", "-"}, yaml); }

void TestAgent::apply(const std::string& yaml) const {
  CommandResult r = try_apply(yaml);
  if (!r.ok()) throw HarnessError("pilus apply failed: " + r.describe() + "\nmanifest:\n" + yaml);
}

void TestAgent::remove(const std::string& yaml) const {
  CommandResult r = try_remove(yaml);
  if (!r.ok()) throw HarnessError("pilus delete failed: " + r.describe() + "\nmanifest:\n" + yaml);
}

json TestAgent::pods() const { return parse_json(pilus({"get", "pods", "-A", "-o", "json"})).at("items"); }

json TestAgent::pod(const std::string& ns, const std::string& name) const {
  for (const auto& p : pods())
    if (p["metadata"]["namespace"] == ns && p["metadata"]["name"] == name) return p;
  throw HarnessError("pilus get pods does not list " + ns + "/" + name);
}

std::string TestAgent::pod_ip(const std::string& ns, const std::string& name) const {
  return pod(ns, name)["status"]["podIP"].get<std::string>();
}

json TestAgent::identities() const { return parse_json(pilus({"get", "identities", "-o", "json"})).at("items"); }
json TestAgent::bpf_endpoints() const { return parse_json(pilus({"bpf", "endpoints", "-o", "json"})); }
uint64_t TestAgent::counted_packets(const std::string& reason, std::optional<uint64_t> endpoint_id,
                                   const std::string& direction) const {
  const json maps = bpf_endpoints();  // kept alive: the loop walks a part of it
  uint64_t packets = 0;
  for (const auto& c : maps["counters"])
    if (c["reason"] == reason && (!endpoint_id || c["endpointID"] == *endpoint_id) &&
        (direction.empty() || c["direction"] == direction))
      packets += c["packets"].get<uint64_t>();
  return packets;
}

uint64_t TestAgent::tracked_packets(const std::string& source_ip, const std::string& destination) const {
  uint64_t packets = 0;
  for (const auto& e : bpf_conntrack())
    if (e["scope"] == "egress" && e["source"].get<std::string>().starts_with(source_ip + ":") &&
        (destination.empty() || e["destination"] == destination))
      packets += e["packetsForward"].get<uint64_t>();
  return packets;
}

json TestAgent::bpf_conntrack() const { return parse_json(pilus({"bpf", "ct", "-o", "json"})).at("items"); }

CommandResult TestAgent::run_in_pod(const std::string& ns, const std::string& name,
                                    const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
  std::vector<std::string> full = {"ip", "netns", "exec", pod(ns, name)["status"]["netns"].get<std::string>()};
  full.insert(full.end(), argv.begin(), argv.end());
  return run_command(full, "", timeout);
}

void TestAgent::wait_listening(const std::string& ns, const std::string& name, int port,
                               const std::string& proto) const {
  std::vector<std::string> ss = {"ss", "-Hln", proto == "tcp" ? "-t" : "-u", "sport = :" + std::to_string(port)};
  bool listening = wait_until([&] {
    CommandResult r = run_in_pod(ns, name, ss);
    return r.ok() && !r.out.empty();
  });
  if (!listening) throw HarnessError("pod " + ns + "/" + name + " never listened on " + std::to_string(port) + "/" + proto);
}

// ---------------------------------------------------------------- host server

HostServer::HostServer(const std::string& ip, int port, const std::string& name) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) throw HarnessError("bad address " + ip);
  // Bound before the fork: once the constructor returns, the server answers.
  int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  if (bind(tcp, sa, sizeof addr) < 0 || listen(tcp, 16) < 0 || bind(udp, sa, sizeof addr) < 0) {
    int e = errno;
    close(tcp), close(udp);
    throw HarnessError("host server on " + ip + ":" + std::to_string(port) + ": " + strerror(e));
  }
  std::string prefix = name + ": ";
  pid_ = fork();
  if (pid_ < 0) throw HarnessError(std::string("fork: ") + strerror(errno));
  if (pid_ == 0) {
    // The child only serves, then dies by SIGKILL; it never returns into gtest.
    for (;;) {
      pollfd fds[2] = {{tcp, POLLIN, 0}, {udp, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue;
      char buf[2048];
      if (fds[0].revents & POLLIN) {
        int c = accept(tcp, nullptr, nullptr);
        if (c >= 0) {
          pollfd cp{c, POLLIN, 0};
          ssize_t n = poll(&cp, 1, 2000) == 1 ? read(c, buf, sizeof buf) : -1;
          if (n > 0) {
            std::string reply = prefix + std::string(buf, static_cast<size_t>(n));
            send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
          }
          close(c);
        }
      }
      if (fds[1].revents & POLLIN) {
        sockaddr_in from{};
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(udp, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n > 0) {
          std::string reply = prefix + std::string(buf, static_cast<size_t>(n));
          sendto(udp, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
        }
      }
    }
  }
  close(tcp);
  close(udp);
}

HostServer::~HostServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

}  // namespace pilus::e2e
