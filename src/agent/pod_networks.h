// What the agent creates in the kernel for a pod (its network namespace and veth, and the
// processes in them), recorded in the store's "pod-networks" collection before it is created and
// erased after it is destroyed. A record without a stored pod is an orphan: an apply died between
// creating the pod and committing it, or a delete between committing and destroying. Names alone
// cannot tell whose a namespace is (several agents share the node), the records can.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/store.h"

namespace pilus::agent {

struct PodNetwork {
  std::string netns;
  std::string host_if;
};
void to_json(nlohmann::json& j, const PodNetwork& n);
void from_json(const nlohmann::json& j, PodNetwork& n);

inline constexpr const char* kPodNetworks = "pod-networks";

// The record for pod `key` ("namespace/name") with the names create_endpoint gives it.
PodNetwork pod_network_of(const std::string& ns, const std::string& name);

// At start, after the stored pods were adopted: kills every process of the agent's pod cgroup
// that is in a network namespace other than the host's and the stored pods', removes the namespace and link of every
// record whose pod is not stored, and erases those records. Returns a line per thing removed.
std::vector<std::string> remove_orphans(store::Store& store, const std::string& cgroup_path);

// Kills (SIGKILL) the processes listed in the cgroup whose network namespace is neither the
// caller's nor one of `keep` (names under /run/netns); waits until they are gone. Returns their pids.
std::vector<int> kill_processes_outside(const std::string& cgroup_path, const std::vector<std::string>& keep);

}  // namespace pilus::agent
