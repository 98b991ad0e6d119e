#include "endpoint/pod_process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/error.h"

extern char** environ;

namespace pilus::endpoint {

namespace {

std::string resolve_in_path(const std::string& cmd) {
  if (cmd.find('/') != std::string::npos) return cmd;
  const char* path = getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = dir + "/" + cmd;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  fail("command \"{}\" not found in PATH", cmd);
}

}  // namespace

ProcessHandle start_pod_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) fail("empty command");
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls (the agent is multithreaded).
  std::string exe = resolve_in_path(spec.argv[0]);
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; e++) env_strings.emplace_back(*e);
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  int netns_fd = open(("/run/netns/" + spec.netns).c_str(), O_RDONLY | O_CLOEXEC);
  if (netns_fd < 0) throw system_error("opening netns " + spec.netns, errno);
  int log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) {
    close(netns_fd);
    throw system_error("opening " + spec.log_path, errno);
  }
  int procs_fd = open((spec.cgroup_path + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (procs_fd < 0) {
    close(netns_fd);
    close(log_fd);
    throw system_error("opening " + spec.cgroup_path + "/cgroup.procs", errno);
  }
  // The child reports a failed exec through this pipe (closed on success).
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) < 0) throw system_error("pipe", errno);

  pid_t pid = fork();
  if (pid < 0) throw system_error("fork", errno);
  if (pid == 0) {
    int err = 0;
    const char* step = "setsid";
    if (setsid() < 0) err = errno;
    if (!err && write(procs_fd, "0", 1) < 0) err = errno, step = "joining the pods' cgroup";
    if (!err && setns(netns_fd, CLONE_NEWNET) < 0) err = errno, step = "entering the network namespace";
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    // Nothing of the agent's (API socket, BPF fds) may leak into the pod.
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!err) {
      execve(exe.c_str(), argv.data(), envp.data());
      err = errno;
      step = "exec";
    }
    (void)!write(status_pipe[1], &err, sizeof(err));
    (void)!write(status_pipe[1], step, strlen(step));
    _exit(127);
  }
  close(status_pipe[1]);
  close(netns_fd);
  close(log_fd);
  close(procs_fd);
  int child_err = 0;
  char step[64] = {};
  ssize_t n = read(status_pipe[0], &child_err, sizeof(child_err));
  if (n == sizeof(child_err)) (void)!read(status_pipe[0], step, sizeof(step) - 1);
  close(status_pipe[0]);
  if (n == sizeof(child_err)) {
    waitpid(pid, nullptr, 0);
    throw system_error("starting `" + spec.argv[0] + "` in pod (" + step + ")", child_err);
  }
  ProcessHandle h{pid, process_start_time(pid).value_or(0)};
  return h;
}

std::optional<uint64_t> process_start_time(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) return std::nullopt;
  // Field 2 (comm) may hold spaces: count fields after its closing ')'.
  auto close_paren = content.rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  std::istringstream rest(content.substr(close_paren + 2));
  std::string field;
  for (int i = 3; i <= 22; i++) {
    if (!(rest >> field)) return std::nullopt;
  }
  // A zombie is not alive for pilus's purposes.
  std::istringstream state_stream(content.substr(close_paren + 2));
  std::string state;
  state_stream >> state;
  if (state == "Z" || state == "X") return std::nullopt;
  return std::stoull(field);
}

bool process_alive(const ProcessHandle& h) {
  if (h.pid <= 0) return false;
  auto st = process_start_time(h.pid);
  return st && *st == h.start_time;
}

std::optional<int> reap_child(int pid) {
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == pid)
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return std::nullopt;
}

void stop_process(const ProcessHandle& h, int grace_ms) {
  if (!process_alive(h)) {
    reap_child(h.pid);
    return;
  }
  kill(h.pid, SIGTERM);
  for (int waited = 0; waited < grace_ms; waited += 20) {
    reap_child(h.pid);
    if (!process_alive(h)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (process_alive(h)) kill(h.pid, SIGKILL);
  for (int i = 0; i < 50 && process_alive(h); i++) {
    reap_child(h.pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace pilus::endpoint
