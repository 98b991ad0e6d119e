// A pod's command: started inside the pod's network namespace and pilus's
// cgroup, detached from the agent so that it survives agent restarts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pilus::endpoint {

struct ProcessHandle {
  int pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat field 22: tells a reused PID apart
};

struct ProcessSpec {
  std::vector<std::string> argv;  // command + args
  std::vector<std::pair<std::string, std::string>> env;
  std::string netns;        // name under /run/netns
  std::string cgroup_path;  // absolute cgroup2 directory
  std::string log_path;     // stdout and stderr go here
};

ProcessHandle start_pod_process(const ProcessSpec& spec);

// Start time of PID, or nullopt when no such process.
std::optional<uint64_t> process_start_time(int pid);

// True when the process recorded in `h` still runs (same PID, same start).
bool process_alive(const ProcessHandle& h);

// SIGTERM, then SIGKILL after `grace_ms`; only if `h` is still that process.
void stop_process(const ProcessHandle& h, int grace_ms = 2000);

// Reaps `pid` if it is our exited child; returns its exit code then.
std::optional<int> reap_child(int pid);

}  // namespace pilus::endpoint
