// Turns one proxied HTTP exchange into Hubble-style L7 flows: a request flow
// (FORWARDED, or DROPPED with POLICY_DENIED) and a response flow (is_reply,
// status code and latency), named through the agent's endpoint resolver.
#pragma once

#include <string>

#include "observe/flow.h"
#include "observe/flow_decoder.h"
#include "proxy/http_proxy.h"

namespace pilus::proxy {

observe::Flow l7_flow(const HttpExchange& x, bool response, const observe::EndpointResolver& resolver,
                      const std::string& node_name);

}  // namespace pilus::proxy
