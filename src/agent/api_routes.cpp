#include "agent/api_routes.h"

#include <malloc.h>

#include <map>
#include <string>

#include "agent/cni_routes.h"
#include "api/json_body.h"
#include "common/error.h"
#include "identity/labels.h"
#include "observe/flow_filter.h"
#include "observe/flow_stream.h"
#include "policy/selector.h"

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

// An item's namespace as each view shows it; "" for cluster-scoped objects.
std::string namespace_of(const nlohmann::json& item) {
  if (item.contains("metadata") && item["metadata"].contains("namespace")) return item["metadata"]["namespace"];
  if (item.contains("namespace") && item["namespace"].is_string()) return item["namespace"];
  if (item.contains("pod") && item["pod"].is_string()) {  // endpoints: "namespace/name"
    std::string pod = item["pod"];
    return pod.substr(0, pod.find('/'));
  }
  return "";
}

identity::LabelSet labels_of(const nlohmann::json& item) {
  identity::LabelSet set;
  if (item.contains("metadata") && item["metadata"].contains("labels")) {
    for (const auto& [k, v] : item["metadata"]["labels"].items())
      set.insert(identity::Label{std::string(identity::kSourceK8s), k, v.get<std::string>()});
  } else if (item.contains("labels") && item["labels"].is_array()) {  // endpoints, identities: "k8s:app=web"
    for (const auto& l : item["labels"]) set.insert(identity::parse_label(l.get<std::string>()));
  }
  return set;
}

}  // namespace

nlohmann::json narrow_list(nlohmann::json list, const std::string& ns, const std::string& selector_text) {
  if (ns.empty() && selector_text.empty()) return list;
  std::optional<policy::LabelSelector> selector;
  if (!selector_text.empty()) selector = policy::parse_selector_text(selector_text);
  nlohmann::json items = nlohmann::json::array();
  for (auto& item : list["items"]) {
    std::string item_ns = namespace_of(item);
    if (!ns.empty() && !item_ns.empty() && item_ns != ns) continue;
    if (selector && !selector->matches(labels_of(item))) continue;
    items.push_back(std::move(item));
  }
  list["items"] = std::move(items);
  return list;
}

namespace {

nlohmann::json narrowed(nlohmann::json list, const api::Request& r) {
  return narrow_list(std::move(list), r.query_value("namespace"), r.query_value("labelSelector"));
}

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
  auto list = [&](const std::string& path, std::function<nlohmann::json()> view) {
    server.handle("GET", path, [view](const Request& r) { return Response::json(narrowed(view(), r)); });
  };
  list("/v1/pods", [&] { return agent.pods(); });
  list("/v1/endpoints", [&] { return agent.endpoints(); });
  list("/v1/identities", [&] { return agent.identities(); });
  list("/v1/namespaces", [&] { return agent.namespaces(); });
  server.handle_stream(
      "GET", "/v1/bpf/ct",
      [&](const Request&, const api::StreamWriter& w) {
        ReturnFreedMemory trim;
        agent.bpf_conntrack(w);
      },
      "application/json");
  get("/v1/bpf/ipcache", [&] { return agent.bpf_ipcache(); });
  get("/v1/bpf/endpoints", [&] { return agent.bpf_endpoints(); });
  list("/v1/policies", [&] { return agent.policies(); });
  list("/v1/services", [&] { return agent.services(); });
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
  // dryRun=All, as the Kubernetes API takes it: validate and plan, change nothing.
  server.handle("POST", "/v1/apply", [&](Request& r) {
    ReturnFreedMemory trim;
    std::string dry_run = r.query_value("dryRun");
    if (!dry_run.empty() && dry_run != "All") fail("dryRun: \"{}\" is not supported (use All)", dry_run);
    return Response::json(agent.apply(sources_from_request(std::move(r.body)), dry_run == "All"));
  });
  server.handle("POST", "/v1/delete", [&](Request& r) {
    ReturnFreedMemory trim;
    return Response::json(agent.remove(sources_from_request(std::move(r.body))));
  });
  register_cni_routes(server, agent);
  server.handle("POST", "/v1/bpf/ct/gc",
                [&](const Request&) { return Response::json({{"deleted", agent.conntrack_gc()}}); });
}

}  // namespace pilus::agent
