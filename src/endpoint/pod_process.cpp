#include "endpoint/pod_process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "endpoint/pod_init.h"

extern char** environ;

namespace pilus::endpoint {

namespace {

// Copies a C string into the failure report (async-signal-safe: no strlen/strncpy guarantees).
void report_from_child(int fd, int err, const char* what) {
  StartFailure f;
  f.err = err;
  for (size_t i = 0; what[i] && i + 1 < sizeof(f.what); i++) f.what[i] = what[i];
  (void)!write(fd, &f, sizeof(f));
}

}  // namespace

bool ProcessSpec::privileged() const {
  for (const auto& c : containers)
    if (c.privileged) return true;
  return false;
}

nlohmann::json to_json(const ProcessSpec& spec) {
  nlohmann::json containers = nlohmann::json::array();
  for (const auto& c : spec.containers) {
    containers.push_back({{"name", c.name}, {"argv", c.argv}, {"env", c.env}, {"logPath", c.log_path}, {"logFd", c.log_fd}, {"workingDir", c.working_dir},
                          {"uid", c.uid}, {"gid", c.gid}, {"supplementalGroups", c.supplemental_groups},
                          {"capabilities", c.capabilities}, {"privileged", c.privileged},
                          {"noNewPrivs", c.no_new_privs}});
  }
  return {{"hostname", spec.hostname}, {"netns", spec.netns}, {"cgroupPath", spec.cgroup_path},
          {"hiddenPaths", spec.hidden_paths}, {"containers", containers}};
}

ProcessSpec process_spec_from_json(const nlohmann::json& j) {
  ProcessSpec spec;
  spec.hostname = j.at("hostname");
  spec.netns = j.at("netns");
  spec.cgroup_path = j.at("cgroupPath");
  spec.hidden_paths = j.at("hiddenPaths").get<std::vector<std::string>>();
  for (const auto& c : j.at("containers")) {
    ContainerProcess p;
    p.name = c.at("name");
    p.argv = c.at("argv").get<std::vector<std::string>>();
    p.env = c.at("env").get<std::vector<std::pair<std::string, std::string>>>();
    p.log_path = c.at("logPath");
    p.log_fd = c.at("logFd");
    p.working_dir = c.at("workingDir");
    p.uid = c.at("uid");
    p.gid = c.at("gid");
    p.supplemental_groups = c.at("supplementalGroups").get<std::vector<uint32_t>>();
    p.capabilities = c.at("capabilities").get<std::vector<int>>();
    p.privileged = c.at("privileged");
    p.no_new_privs = c.at("noNewPrivs");
    spec.containers.push_back(std::move(p));
  }
  return spec;
}

ProcessHandle start_pod_process(const ProcessSpec& spec) {
  if (spec.containers.empty()) fail("no container with a command");
  for (const auto& c : spec.containers)
    if (c.argv.empty()) fail("container {}: empty command", c.name);
  // Everything the child needs is prepared before clone: after it, only
  // async-signal-safe calls (the agent is multithreaded).
  std::vector<int> fds;  // closed on every way out
  auto open_fd = [&](const std::string& path, int flags) {
    int fd = open(path.c_str(), flags | O_CLOEXEC, 0640);
    if (fd < 0) {
      int err = errno;
      for (int f : fds) close(f);
      throw system_error("opening " + path, err);
    }
    fds.push_back(fd);
    return fd;
  };
  auto close_all = [&] {
    for (int f : fds) close(f);
    fds.clear();
  };
  // The init is this very binary (`pilus pod-init`), even if the file was replaced since.
  int exe_fd = open_fd("/proc/self/exe", O_RDONLY);
  int netns_fd = open_fd("/run/netns/" + spec.netns, O_RDONLY);
  int procs_fd = open_fd(spec.cgroup_path + "/cgroup.procs", O_WRONLY);
  int devnull = open_fd("/dev/null", O_RDWR);
  // Logs are opened here, on the node's mounts: a file open for writing on the pod's
  // copy of a mount would keep the init from making that copy read-only.
  ProcessSpec with_logs = spec;
  std::vector<int> log_fds;
  for (auto& c : with_logs.containers) {
    c.log_fd = open_fd(c.log_path, O_WRONLY | O_CREAT | O_APPEND);
    log_fds.push_back(c.log_fd);
  }
  std::string spec_text = to_json(with_logs).dump();
  int spec_pipe[2], status_pipe[2];
  if (pipe2(spec_pipe, O_CLOEXEC) < 0) {
    close_all();
    throw system_error("pipe", errno);
  }
  fds.insert(fds.end(), {spec_pipe[0], spec_pipe[1]});
  if (pipe2(status_pipe, O_CLOEXEC) < 0) {
    close_all();
    throw system_error("pipe", errno);
  }
  fds.insert(fds.end(), {status_pipe[0], status_pipe[1]});
  // The whole spec sits in the pipe before the init starts: no writer to block, no SIGPIPE.
  if (spec_text.size() > 65536 && fcntl(spec_pipe[1], F_SETPIPE_SZ, static_cast<int>(spec_text.size())) < 0) {
    close_all();
    fail("pod spec of {} bytes too large for a pipe", spec_text.size());
  }
  if (write(spec_pipe[1], spec_text.data(), spec_text.size()) != static_cast<ssize_t>(spec_text.size())) {
    int err = errno;
    close_all();
    throw system_error("writing the pod spec", err);
  }
  std::string spec_fd_arg = std::to_string(spec_pipe[0]), status_fd_arg = std::to_string(status_pipe[1]);
  std::string init_arg(kPodInitCommand);
  std::array<char*, 5> argv = {const_cast<char*>("pilus"), init_arg.data(), spec_fd_arg.data(),
                               status_fd_arg.data(), nullptr};

  // The child is PID 1 of new PID, mount, UTS and IPC namespaces.
  clone_args args{};
  args.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid < 0) {
    int err = errno;
    close_all();
    throw system_error("clone3 (new PID, mount, UTS and IPC namespaces)", err);
  }
  if (pid == 0) {
    int err = 0;
    const char* step = "setsid";
    if (setsid() < 0) err = errno;
    if (!err && write(procs_fd, "0", 1) < 0) err = errno, step = "joining the pods' cgroup";
    if (!err && setns(netns_fd, CLONE_NEWNET) < 0) err = errno, step = "entering the network namespace";
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    // Nothing of the agent's (API socket, BPF fds) may leak into the pod.
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    fcntl(spec_pipe[0], F_SETFD, 0);
    fcntl(status_pipe[1], F_SETFD, 0);
    for (int fd : log_fds) fcntl(fd, F_SETFD, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!err) {
      syscall(SYS_execveat, exe_fd, "", argv.data(), environ, AT_EMPTY_PATH);
      err = errno;
      step = "executing pilus pod-init";
    }
    report_from_child(status_pipe[1], err, step);
    _exit(127);
  }
  std::erase(fds, status_pipe[0]);  // the status pipe's read end stays open
  close_all();
  // EOF: every holder of the write end (init, each container) exec'd or exited.
  StartFailure failure;
  size_t got = 0;
  while (got < sizeof(failure)) {
    ssize_t n = read(status_pipe[0], reinterpret_cast<char*>(&failure) + got, sizeof(failure) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(status_pipe[0]);
  if (got == sizeof(failure)) {
    kill(static_cast<pid_t>(pid), SIGKILL);  // the whole PID namespace goes with its init
    waitpid(static_cast<pid_t>(pid), nullptr, 0);
    failure.what[sizeof(failure.what) - 1] = 0;
    std::string what = failure.what;
    if (failure.err) throw system_error("starting the pod (" + what + ")", failure.err);
    fail("starting the pod: {}", what);
  }
  return ProcessHandle{static_cast<int>(pid), process_start_time(static_cast<int>(pid)).value_or(0)};
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
