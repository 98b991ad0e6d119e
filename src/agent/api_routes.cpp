#include "agent/api_routes.h"

#include <malloc.h>

#include <map>
#include <string>

#include "api/json_body.h"
#include "common/error.h"
#include "observe/flow_filter.h"
#include "observe/flow_stream.h"

namespace pilus::agent {

namespace {

// "app=backend,tier=db" -> {app: backend, tier: db}
std::map<std::string, std::string> label_list(const std::string& text, const std::string& flag) {
  std::map<std::string, std::string> labels;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) fail("{}: \"{}\" is not key=value", flag, item);
    labels[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 1;
  }
  return labels;
}

// After a request that allocated a lot (a large manifest, a full conntrack dump), hands the freed
// memory back to the kernel: glibc keeps it otherwise, and the agent would stay that big.
struct ReturnFreedMemory {
  ~ReturnFreedMemory() { malloc_trim(0); }
};

}  // namespace

using api::Request;
using api::Response;

std::vector<manifest::Source> sources_from_request(std::string&& body) {
  nlohmann::json j;
  api::JsonField root = api::parse_json_body(std::move(body), j);
  std::vector<manifest::Source> sources;
  for (auto& s : root.at("sources").items()) sources.push_back({s.at("name").string(), s.at("text").take_string()});
  if (sources.empty()) fail("no manifests given");
  return sources;
}

void register_api_routes(api::HttpServer& server, Agent& agent) {
  auto get = [&](const std::string& path, std::function<nlohmann::json()> view) {
    server.handle("GET", path, [view](const Request&) { return Response::json(view()); });
  };
  get("/v1/healthz", [] { return nlohmann::json{{"health", "Ok"}}; });
  get("/v1/status", [&] { return agent.status(); });
  get("/v1/pods", [&] { return agent.pods(); });
  get("/v1/endpoints", [&] { return agent.endpoints(); });
  get("/v1/identities", [&] { return agent.identities(); });
  get("/v1/namespaces", [&] { return agent.namespaces(); });
  server.handle_stream(
      "GET", "/v1/bpf/ct",
      [&](const Request&, const api::StreamWriter& w) {
        ReturnFreedMemory trim;
        agent.bpf_conntrack(w);
      },
      "application/json");
  get("/v1/bpf/ipcache", [&] { return agent.bpf_ipcache(); });
  get("/v1/bpf/endpoints", [&] { return agent.bpf_endpoints(); });
  get("/v1/policies", [&] { return agent.policies(); });
  get("/v1/services", [&] { return agent.services(); });
  get("/v1/bpf/lb", [&] { return agent.bpf_lb(); });
  server.handle("GET", "/v1/bpf/policy",
                [&](const Request& r) { return Response::json(agent.bpf_policy(r.query_value("pod"))); });
  server.handle("GET", "/v1/policy/trace", [&](const Request& r) {
    std::string port = r.query_value("port", "0");
    int p = 0;
    try {
      p = std::stoi(port);
    } catch (...) {
      p = -1;
    }
    if (p < 0 || p > 65535) fail("--dport: \"{}\" is not a port number", port);
    auto side = [&](const std::string& which) {
      Agent::TraceSide s{r.query_value(which), r.query_value(which + "Namespace"),
                         label_list(r.query_value(which + "Labels"), "--" + which + "-labels")};
      if (s.name.empty() == s.labels.empty())
        fail("policy trace needs --{0} (a pod or an address) or --{0}-labels, and not both", which);
      return s;
    };
    return Response::json(agent.policy_trace(side("from"), side("to"), static_cast<uint16_t>(p),
                                             r.query_value("protocol", "tcp")));
  });
  server.handle_stream("GET", "/v1/flows", [&](const Request& r, const api::StreamWriter& w) {
    auto request = observe::parse_observe_query(r.query);
    observe::StreamOptions options;
    options.node_name = agent.config().node_name;
    options.datapath_lost = [&agent] { return agent.lost_events(); };
    observe::stream_flows(agent.flows(), request, w, options);
  });
  server.on_stop([&agent] { agent.flows().close(); });
  server.handle("POST", "/v1/apply", [&](Request& r) {
    ReturnFreedMemory trim;
    return Response::json(agent.apply(sources_from_request(std::move(r.body))));
  });
  server.handle("POST", "/v1/delete", [&](Request& r) {
    ReturnFreedMemory trim;
    return Response::json(agent.remove(sources_from_request(std::move(r.body))));
  });
  server.handle("POST", "/v1/bpf/ct/gc",
                [&](const Request&) { return Response::json({{"deleted", agent.conntrack_gc()}}); });
}

}  // namespace pilus::agent
