#include "endpoint/pod_init.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "endpoint/pod_process.h"

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

extern char** environ;

namespace pilus::endpoint {

namespace {

void report(int status_fd, int err, const std::string& what) {
  StartFailure f;
  f.err = err;
  std::strncpy(f.what, what.c_str(), sizeof(f.what) - 1);
  (void)!write(status_fd, &f, sizeof(f));
}

void check(int rc, const std::string& what) {
  if (rc < 0) throw system_error(what, errno);
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// Lazily unmounts every mount stacked on `path` (and all below it).
void detach_mounts(const std::string& path) {
  while (umount2(path.c_str(), MNT_DETACH) == 0) {
  }
}

void set_read_only(const std::string& path, bool recursive) {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  check(mount_setattr(AT_FDCWD, path.c_str(), recursive ? AT_RECURSIVE : 0, &attr, sizeof(attr)),
        "making " + path + " read-only");
}

void set_writable(const std::string& path) {
  mount_attr attr{};
  attr.attr_clr = MOUNT_ATTR_RDONLY;
  check(mount_setattr(AT_FDCWD, path.c_str(), 0, &attr, sizeof(attr)), "making " + path + " writable");
}

void bind_mount(const std::string& from, const std::string& to) {
  check(mount(from.c_str(), to.c_str(), nullptr, MS_BIND | MS_REC, nullptr), "bind-mounting " + from + " on " + to);
}

// A directory shows as empty and read-only; a file (the API socket) as /dev/null.
void hide(const std::string& path) {
  if (!exists(path)) return;
  if (is_dir(path)) {
    detach_mounts(path);  // /run/netns: drops this namespace's references to other pods' netns
    check(mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=755"),
          "hiding " + path);
  } else {
    bind_mount("/dev/null", path);  // connecting to it is refused; writing goes nowhere
  }
}

// /dev as a container runtime makes it: a tmpfs with the harmless devices of the node
// (no disks), a private devpts and /dev/shm (its own IPC namespace's).
void make_dev() {
  const std::vector<std::string> devices = {"null", "zero", "full", "random", "urandom", "tty"};
  std::map<std::string, int> trees;  // detached copies of the node's device nodes
  for (const auto& d : devices) {
    int fd = open_tree(AT_FDCWD, ("/dev/" + d).c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd >= 0) trees[d] = fd;
  }
  detach_mounts("/dev");
  check(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k"), "mounting /dev");
  for (const auto& [d, fd] : trees) {
    std::string path = "/dev/" + d;
    int file = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (file >= 0) close(file);
    check(move_mount(fd, "", AT_FDCWD, path.c_str(), MOVE_MOUNT_F_EMPTY_PATH), "mounting " + path);
    close(fd);
  }
  mkdir("/dev/pts", 0755);
  check(mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"),
        "mounting /dev/pts");
  (void)!symlink("pts/ptmx", "/dev/ptmx");
  mkdir("/dev/shm", 01777);
  check(mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k"),
        "mounting /dev/shm");
  (void)!symlink("/proc/self/fd", "/dev/fd");
  (void)!symlink("/proc/self/fd/0", "/dev/stdin");
  (void)!symlink("/proc/self/fd/1", "/dev/stdout");
  (void)!symlink("/proc/self/fd/2", "/dev/stderr");
}

void write_sysctl(const char* path, std::string_view value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  check(fd, std::string("opening ") + path);
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n < 0) throw system_error(std::string("writing ") + path, err);
}

// The pod's view of the node's filesystem. Mounts are made slave first: nothing done
// here reaches the node, and the node's unmounts (a deleted pod's netns) reach the pod.
void set_up_mounts(const ProcessSpec& spec) {
  bool privileged = spec.privileged();
  check(mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr), "making mounts slave");
  hide("/run/netns");
  for (const auto& path : spec.hidden_paths) hide(path);
  if (!privileged) {
    // The node's files are read-only to the pod, but for its scratch directories.
    std::vector<std::string> scratch;
    for (const char* dir : {"/tmp", "/var/tmp"}) {
      if (!is_dir(dir)) continue;
      bind_mount(dir, dir);
      scratch.push_back(dir);
    }
    set_read_only("/", true);
    for (const auto& dir : scratch) set_writable(dir);
    make_dev();
  }
  // This PID namespace's processes only.
  detach_mounts("/proc");
  check(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr), "mounting /proc");
  // As Docker and containerd set them in a pod's netns: ICMP echo sockets for every group
  // (ping without NET_RAW), and any port bindable by any user (a non-root server on 80).
  write_sysctl("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
  write_sysctl("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
  // The pod's own interfaces in /sys/class/net; no bpffs (/sys/fs/bpf), no cgroupfs.
  detach_mounts("/sys");
  check(mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (privileged ? 0 : MS_RDONLY), nullptr),
        "mounting /sys");
  if (!privileged) {
    for (const char* path : {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}) {
      if (!exists(path)) continue;
      bind_mount(path, path);
      set_read_only(path, true);
    }
    for (const char* path : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"})
      if (exists(path)) bind_mount("/dev/null", path);
  }
}

std::string resolve_in_path(const std::string& cmd, const std::string& path) {
  if (cmd.find('/') != std::string::npos) return cmd;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = dir + "/" + cmd;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  fail("command \"{}\" not found in PATH ({})", cmd, path);
}

// A container's environment: what Docker gives (PATH, HOSTNAME, HOME), then the manifest's.
std::vector<std::string> container_env(const ProcessSpec& spec, const ContainerProcess& c) {
  const char* node_path = getenv("PATH");
  std::vector<std::pair<std::string, std::string>> vars = {
      {"PATH", node_path ? node_path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOSTNAME", spec.hostname},
      {"HOME", c.uid == 0 ? "/root" : "/"}};
  for (const auto& [k, v] : c.env) {
    auto same = std::find_if(vars.begin(), vars.end(), [&](const auto& e) { return e.first == k; });
    if (same != vars.end()) same->second = v;
    else vars.emplace_back(k, v);
  }
  std::vector<std::string> env;
  for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
  return env;
}

// Groups, user, then capabilities as containerd sets them: the bounding, permitted and
// effective sets hold the container's capabilities, inheritable and ambient none. A
// non-root user thus keeps them only in its bounding set after exec (as in Kubernetes).
void drop_privileges(std::vector<int> keep, uint32_t uid, uint32_t gid, const std::vector<uint32_t>& groups,
                     bool no_new_privs) {
  // What the agent itself lacks cannot be given (privileged means all the agent has).
  cap_t own = cap_get_proc();
  std::erase_if(keep, [&](int cap) {
    cap_flag_value_t v = CAP_CLEAR;
    return cap_get_flag(own, cap, CAP_PERMITTED, &v) != 0 || v != CAP_SET;
  });
  cap_free(own);
  std::vector<gid_t> gids(groups.begin(), groups.end());
  check(setgroups(gids.size(), gids.data()), "setgroups");
  for (int cap = 0; cap < static_cast<int>(cap_max_bits()); cap++)
    if (std::find(keep.begin(), keep.end(), cap) == keep.end()) check(prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "dropping a capability");
  check(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS");
  check(setresgid(gid, gid, gid), "setting group " + std::to_string(gid));
  check(setresuid(uid, uid, uid), "setting user " + std::to_string(uid));
  check(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "PR_SET_KEEPCAPS");
  cap_t caps = cap_init();  // all clear
  std::vector<cap_value_t> values(keep.begin(), keep.end());
  if (!values.empty()) {
    cap_set_flag(caps, CAP_PERMITTED, static_cast<int>(values.size()), values.data(), CAP_SET);
    cap_set_flag(caps, CAP_EFFECTIVE, static_cast<int>(values.size()), values.data(), CAP_SET);
  }
  int rc = cap_set_proc(caps);
  int err = errno;
  cap_free(caps);
  if (rc < 0) throw system_error("setting capabilities", err);
  check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities");
  if (no_new_privs) check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS");
}

// In the forked child: becomes the container's command, or reports why not.
[[noreturn]] void exec_container(const ProcessSpec& spec, const ContainerProcess& c, int log_fd, int status_fd) {
  try {
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    check(setsid(), "setsid");
    check(dup2(log_fd, 1), "redirecting stdout");
    check(dup2(log_fd, 2), "redirecting stderr");
    std::vector<std::string> env = container_env(spec, c);
    std::string path;
    for (const auto& e : env)
      if (e.starts_with("PATH=")) path = e.substr(5);
    check(chdir(c.working_dir.c_str()), "changing to the working directory " + c.working_dir);
    std::string exe = resolve_in_path(c.argv.front(), path);
    drop_privileges(c.capabilities, c.uid, c.gid, c.supplemental_groups, c.no_new_privs);
    std::vector<char*> argv, envp;
    for (const auto& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(exe.c_str(), argv.data(), envp.data());
    throw system_error("executing " + exe, errno);
  } catch (const std::exception& e) {
    report(status_fd, 0, "container " + c.name + ": " + e.what());
  }
  _exit(127);
}

// The init keeps only what forwarding signals to the pod's processes needs.
void drop_init_privileges() {
  for (int cap = 0; cap < static_cast<int>(cap_max_bits()); cap++)
    if (cap != CAP_KILL) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  cap_t caps = cap_init();
  cap_value_t kill_cap = CAP_KILL;
  cap_set_flag(caps, CAP_PERMITTED, 1, &kill_cap, CAP_SET);
  cap_set_flag(caps, CAP_EFFECTIVE, 1, &kill_cap, CAP_SET);
  cap_set_proc(caps);
  cap_free(caps);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

int pod_init_main(int spec_fd, int status_fd) {
  fcntl(spec_fd, F_SETFD, FD_CLOEXEC);
  fcntl(status_fd, F_SETFD, FD_CLOEXEC);
  std::vector<pid_t> pids;
  try {
    std::string text;
    char buf[65536];
    for (ssize_t n; (n = read(spec_fd, buf, sizeof(buf))) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      check(static_cast<int>(n), "reading the pod spec");
      text.append(buf, static_cast<size_t>(n));
    }
    close(spec_fd);
    ProcessSpec spec = process_spec_from_json(nlohmann::json::parse(text));
    std::vector<int> logs;  // opened by the agent, in the agent's state dir the pod does not see
    for (const auto& c : spec.containers) {
      check(fcntl(c.log_fd, F_SETFD, FD_CLOEXEC), "log of container " + c.name);
      logs.push_back(c.log_fd);
    }
    check(unshare(CLONE_NEWCGROUP), "new cgroup namespace");
    check(sethostname(spec.hostname.data(), spec.hostname.size()), "setting the hostname");
    set_up_mounts(spec);
    check(chdir("/"), "chdir /");  // not a directory of the node's old mount tree
    // Signals are taken with sigwaitinfo, so none is lost between two waits.
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (size_t i = 0; i < spec.containers.size(); i++) {
      pid_t pid = fork();
      check(pid, "fork");
      if (pid == 0) exec_container(spec, spec.containers[i], logs[i], status_fd);
      pids.push_back(pid);
    }
    for (int fd : logs) close(fd);
  } catch (const std::exception& e) {
    report(status_fd, 0, e.what());
    return 127;
  }
  close(status_fd);
  drop_init_privileges();

  std::vector<std::optional<int>> codes(pids.size());
  size_t running = pids.size();
  while (running > 0) {
    sigset_t all;
    sigfillset(&all);
    siginfo_t info{};
    int sig = sigwaitinfo(&all, &info);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT || sig == SIGUSR1 || sig == SIGUSR2) {
      kill(-1, sig);  // every process of the pod but this one
      continue;
    }
    if (sig != SIGCHLD) continue;
    int status = 0;
    for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
      auto it = std::find(pids.begin(), pids.end(), pid);
      if (it == pids.end()) continue;  // an orphan reparented to init
      codes[static_cast<size_t>(it - pids.begin())] = exit_code(status);
      running--;
    }
  }
  for (const auto& code : codes)
    if (*code != 0) return *code;
  return 0;
}

}  // namespace pilus::endpoint
