// The API routes pilus-cni calls: /v1/cni/{add,del,check,gc}.
#pragma once

#include "agent/agent.h"
#include "api/http_server.h"

namespace pilus::agent {

void register_cni_routes(api::HttpServer& server, Agent& agent);

}  // namespace pilus::agent
