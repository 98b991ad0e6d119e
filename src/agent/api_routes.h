// The agent's API paths, mapped onto Agent operations.
#pragma once

#include "agent/agent.h"
#include "api/http_server.h"

namespace pilus::agent {

// kubectl's narrowing of a list view ({"items": [...]}), as the list routes take it in their query
// (`namespace`, `labelSelector`): items of namespace `ns` ("" : every namespace; cluster-scoped items
// always pass) whose labels (metadata.labels, or Cilium label strings in "labels") match the
// Kubernetes selector text. Throws pilus::Error on a bad selector.
nlohmann::json narrow_list(nlohmann::json list, const std::string& ns, const std::string& selector_text);

void register_api_routes(api::HttpServer& server, Agent& agent);

// The sources of an apply/delete request body: {"sources": [{"name", "text"}]}.
std::vector<manifest::Source> sources_from_request(std::string&& body);

}  // namespace pilus::agent
