// `pilus cleanup`: removes everything an agent created on this node — its
// pods' processes, namespaces and links, the host device, the cgroup, the BPF
// pins, the socket and the state dir — even when that agent is dead.
#pragma once

#include <string>
#include <vector>

#include "agent/agent_config.h"

namespace pilus::agent {

// `flags` gives the state dir; the rest is read from the config the agent
// saved there, falling back to `flags` when there is none. Returns a line
// per thing removed.
std::vector<std::string> cleanup(const AgentConfig& flags);

}  // namespace pilus::agent
