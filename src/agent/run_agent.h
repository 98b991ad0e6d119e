// `pilus agent`: runs the daemon in the foreground until SIGTERM or SIGINT.
#pragma once

#include "agent/agent_config.h"

namespace pilus::agent {

int run_agent(const AgentConfig& config);

// Path of the pidfile a running agent keeps in its state dir.
std::string pidfile_path(const std::string& state_dir);

}  // namespace pilus::agent
