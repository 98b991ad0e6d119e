#include "agent/api_routes.h"

#include <malloc.h>

#include <map>
#include <string>

#include "agent/cni_routes.h"
#include "api/json_body.h"
#include "api/v1/errors.h"
#include "api/v1/routes.h"
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

identity::LabelSet k8s_labels(const api::v1::Labels& labels) {
  identity::LabelSet set;
  for (const auto& [k, v] : labels) set.insert(identity::Label{std::string(identity::kSourceK8s), k, v});
  return set;
}

identity::LabelSet cilium_labels(const std::vector<std::string>& labels) {  // "k8s:app=web"
  identity::LabelSet set;
  for (const auto& l : labels) set.insert(identity::parse_label(l));
  return set;
}

}  // namespace

ListFilter::ListFilter(std::string ns, const std::string& selector_text) : ns_(std::move(ns)) {
  if (!selector_text.empty()) selector_ = policy::parse_selector_text(selector_text);
}

bool ListFilter::keeps(const std::string& item_ns, const identity::LabelSet& labels) const {
  if (!ns_.empty() && !item_ns.empty() && item_ns != ns_) return false;
  return !selector_ || selector_->matches(labels);
}

identity::LabelSet labels_of(const api::v1::Pod& item) { return k8s_labels(item.metadata.labels); }
identity::LabelSet labels_of(const api::v1::Endpoint& item) { return cilium_labels(item.labels); }
identity::LabelSet labels_of(const api::v1::Identity& item) { return cilium_labels(item.labels); }
identity::LabelSet labels_of(const api::v1::Namespace& item) { return k8s_labels(item.metadata.labels); }
identity::LabelSet labels_of(const api::v1::Policy& item) {
  return item.metadata.labels ? k8s_labels(*item.metadata.labels) : identity::LabelSet{};
}
identity::LabelSet labels_of(const api::v1::Service& item) { return k8s_labels(item.metadata.labels); }

namespace {

template <class T>
api::v1::List<T> narrowed(api::v1::List<T> list, const api::Request& r) {
  return narrow_list(std::move(list), r.query_value(api::v1::query::kNamespace),
                     r.query_value(api::v1::query::kLabelSelector));
}

}  // namespace

using api::Request;
using api::Response;
namespace path = api::v1::path;
namespace query = api::v1::query;

std::vector<manifest::Source> sources_from_request(std::string&& body) {
  auto request = api::v1::parse<api::v1::ApplyRequest>(body, "request body");
  body.clear();
  body.shrink_to_fit();
  std::vector<manifest::Source> sources;
  sources.reserve(request.sources.size());
  for (auto& s : request.sources) sources.push_back({std::move(s.name), std::move(s.text)});
  if (sources.empty()) fail("no manifests given");
  return sources;
}

void register_api_routes(api::HttpServer& server, Agent& agent) {
  auto get = [&](const std::string& path, std::function<nlohmann::json()> view) {
    server.handle("GET", path, [view](const Request&) { return Response::json(view()); });
  };
  get(path::kHealthz, [] { return api::v1::Health{}; });
  get(path::kStatus, [&] { return agent.status(); });
  auto list = [&](const std::string& path, auto view) {
    server.handle("GET", path, [view](const Request& r) { return Response::json(narrowed(view(), r)); });
  };
  list(path::kPods, [&] { return agent.pods(); });
  list(path::kEndpoints, [&] { return agent.endpoints(); });
  list(path::kIdentities, [&] { return agent.identities(); });
  list(path::kNamespaces, [&] { return agent.namespaces(); });
  server.handle_stream(
      "GET", path::kBpfConntrack,
      [&](const Request&, const api::StreamWriter& w) {
        ReturnFreedMemory trim;
        agent.bpf_conntrack(w);
      },
      "application/json");
  get(path::kBpfIpcache, [&] { return agent.bpf_ipcache(); });
  get(path::kBpfEndpoints, [&] { return agent.bpf_endpoints(); });
  list(path::kPolicies, [&] { return agent.policies(); });
  list(path::kServices, [&] { return agent.services(); });
  get(path::kBpfLb, [&] { return agent.bpf_lb(); });
  server.handle("GET", path::kBpfPolicy,
                [&](const Request& r) { return Response::json(agent.bpf_policy(r.query_value(query::kPod))); });
  server.handle("GET", path::kPolicyTrace, [&](const Request& r) {
    std::string port = r.query_value(query::kPort, "0");
    int p = 0;
    try {
      p = std::stoi(port);
    } catch (...) {
      p = -1;
    }
    if (p < 0 || p > 65535) fail("--dport: \"{}\" is not a port number", port);
    auto side = [&](const std::string& which) {
      Agent::TraceSide s{r.query_value(which), r.query_value(which + query::kEndNamespaceSuffix),
                         label_list(r.query_value(which + query::kEndLabelsSuffix), "--" + which + "-labels")};
      if (s.name.empty() == s.labels.empty())
        fail("policy trace needs --{0} (a pod or an address) or --{0}-labels, and not both", which);
      return s;
    };
    return Response::json(agent.policy_trace(side(query::kFrom), side(query::kTo), static_cast<uint16_t>(p),
                                             r.query_value(query::kProtocol, "tcp")));
  });
  server.handle_stream("GET", path::kFlows, [&](const Request& r, const api::StreamWriter& w) {
    auto request = observe::parse_observe_query(r.query);
    observe::StreamOptions options;
    options.node_name = agent.config().node_name;
    options.datapath_lost = [&agent] { return agent.lost_events(); };
    observe::stream_flows(agent.flows(), request, w, options);
  });
  server.on_stop([&agent] { agent.flows().close(); });
  // dryRun=All, as the Kubernetes API takes it: validate and plan, change nothing.
  server.handle("POST", path::kApply, [&](Request& r) {
    ReturnFreedMemory trim;
    std::string dry_run = r.query_value(query::kDryRun);
    if (!dry_run.empty() && dry_run != query::kDryRunAll)
      fail("{}: \"{}\" is not supported (use {})", query::kDryRun, dry_run, query::kDryRunAll);
    return Response::json(agent.apply(sources_from_request(std::move(r.body)), dry_run == query::kDryRunAll));
  });
  server.handle("POST", path::kDelete, [&](Request& r) {
    ReturnFreedMemory trim;
    return Response::json(agent.remove(sources_from_request(std::move(r.body))));
  });
  register_cni_routes(server, agent);
  server.handle("POST", path::kBpfConntrackGc, [&](const Request&) {
    return Response::json(api::v1::ConntrackGcResult{agent.conntrack_gc()});
  });
}

}  // namespace pilus::agent
