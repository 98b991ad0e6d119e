// The agent's writes to its store: staged in the batch of the apply, delete or restore in
// progress (committed once, see agent_apply.cpp), or written through outside one.
#include "agent/agent.h"

namespace pilus::agent {

void Agent::store_put(const std::string& collection, const std::string& key, const nlohmann::json& value) {
  store_writer_.put(collection, key, value);
}

void Agent::store_erase(const std::string& collection, const std::string& key) {
  store_writer_.erase(collection, key);
}

}  // namespace pilus::agent
