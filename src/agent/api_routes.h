// The agent's API paths, mapped onto Agent operations.
#pragma once

#include "agent/agent.h"
#include "api/http_server.h"

namespace pilus::agent {

void register_api_routes(api::HttpServer& server, Agent& agent);

// The sources of an apply/delete request body: {"sources": [{"name", "text"}]}.
std::vector<manifest::Source> sources_from_request(std::string&& body);

}  // namespace pilus::agent
