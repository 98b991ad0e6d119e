// A pod's processes: `pilus pod-init` (pod_init.h) is started as PID 1 of the pod's own
// PID, mount, UTS and IPC namespaces, inside the pod's network namespace and pilus's
// cgroup, detached from the agent so that it survives agent restarts; it starts each
// container's command. The agent tracks that init: stopping it stops the whole pod.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pilus::endpoint {

struct ProcessHandle {
  int pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat field 22: tells a reused PID apart
};

// One container's command and what it runs as.
struct ContainerProcess {
  std::string name;
  std::vector<std::string> argv;  // command + args
  std::vector<std::pair<std::string, std::string>> env;
  std::string log_path;  // stdout and stderr go here
  int log_fd = -1;       // set by start_pod_process: the log opened by the agent
  std::string working_dir = "/";
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> supplemental_groups;
  std::vector<int> capabilities;  // bounding, permitted and effective set (as containerd sets them)
  bool privileged = false;
  bool no_new_privs = true;
};

struct ProcessSpec {
  std::string hostname;                   // the pod's name, as Kubernetes sets it
  std::string netns;                      // name under /run/netns
  std::string cgroup_path;                // absolute cgroup2 directory
  std::vector<std::string> hidden_paths;  // node paths the pod sees empty (the agent's state, its socket)
  std::vector<ContainerProcess> containers;
  // Node devices, writable /sys and /proc/sys, writable node filesystem: any privileged container.
  bool privileged() const;
};

nlohmann::json to_json(const ProcessSpec& spec);
ProcessSpec process_spec_from_json(const nlohmann::json& j);

// Starts the pod's init and waits until every container's command was executed;
// throws (and leaves nothing running) when any of them could not be.
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
