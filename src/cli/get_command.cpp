#include "cli/get_command.h"

#include <functional>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "api/v1/endpoints.h"
#include "api/v1/errors.h"
#include "api/v1/identities.h"
#include "api/v1/namespaces.h"
#include "api/v1/pods.h"
#include "api/v1/policies.h"
#include "api/v1/routes.h"
#include "api/v1/services.h"
#include "cli/output.h"
#include "cli/table.h"
#include "common/error.h"

namespace pilus::cli {

namespace {

namespace v1 = api::v1;

constexpr const char* kAgentAnswer = "the agent's answer";

std::string join(const std::vector<std::string>& list, const char* sep = ",") {
  std::string s;
  for (const auto& item : list) s += (s.empty() ? "" : sep) + item;
  return s;
}

std::string labels_text(const v1::Labels& labels) {
  std::string s;
  for (const auto& [k, v] : labels) s += (s.empty() ? "" : ",") + k + "=" + v;
  return s.empty() ? "<none>" : s;
}

std::string labels_text(const std::vector<std::string>& labels) {
  std::string s = join(labels);
  return s.empty() ? "<none>" : s;
}

std::string name_after_slash(const std::string& ns_name) { return ns_name.substr(ns_name.find('/') + 1); }

// The error the agent answered ({"error": ...}), else the body as it came.
std::string error_message(const std::string& body) {
  try {
    return v1::parse<v1::ErrorBody>(body, kAgentAnswer).error;
  } catch (const Error&) {
    return body;
  }
}

// One item as `get` shows it.
struct Shown {
  std::string name;
  std::string ns;        // "" for cluster-scoped items
  std::string resource;  // -o name: "pod", "ciliumnetworkpolicy.cilium.io"
  std::vector<std::string> row, wide_row;
  nlohmann::json json;   // -o json / yaml
};

// How one item type fills its columns.
template <class T>
struct Columns {
  std::function<std::string(const T&)> name, resource;
  std::function<std::vector<std::string>(const T&)> row, wide_row;
};

// One kind as `get` shows it: where its list is, how kubectl would name it, its table.
struct KindView {
  std::vector<std::string> aliases;  // the first is the canonical plural
  std::string path;
  bool namespaced;
  std::vector<std::string> header, wide_header;
  std::function<std::vector<Shown>(std::string_view body)> items;  // the list answer, read
};

template <class T>
std::function<std::vector<Shown>(std::string_view)> shown_items(Columns<T> c) {
  return [c](std::string_view body) {
    auto list = v1::parse<v1::List<T>>(body, kAgentAnswer);
    std::vector<Shown> out;
    out.reserve(list.items.size());
    for (const auto& item : list.items)
      out.push_back({c.name(item), v1::namespace_of(item), c.resource(item), c.row(item), c.wide_row(item),
                     nlohmann::json(item)});
    return out;
  };
}

const std::vector<KindView>& kinds() {
  static const std::vector<KindView> views = {
      {{"pods", "pod", "po"},
       v1::path::kPods,
       true,
       {"NAME", "PHASE", "IP", "IDENTITY", "OWNER"},
       {"NODE", "NETNS", "ENDPOINT", "LABELS"},
       shown_items<v1::Pod>({
           [](const v1::Pod& p) { return p.metadata.name; },
           [](const v1::Pod&) { return std::string("pod"); },
           [](const v1::Pod& p) {
             return std::vector<std::string>{p.metadata.name, p.status.phase, p.status.pod_ip,
                                             std::to_string(p.status.identity), p.status.owner};
           },
           [](const v1::Pod& p) {
             return std::vector<std::string>{p.spec.node_name, p.status.netns, std::to_string(p.status.endpoint_id),
                                             labels_text(p.metadata.labels)};
           },
       })},
      {{"services", "service", "svc"},
       v1::path::kServices,
       true,
       {"NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "BACKENDS"},
       {"SELECTOR", "AFFINITY"},
       shown_items<v1::Service>({
           [](const v1::Service& s) { return s.metadata.name; },
           [](const v1::Service&) { return std::string("service"); },
           [](const v1::Service& s) {
             std::vector<std::string> ports, backends;
             for (const auto& p : s.spec.ports) ports.push_back(std::to_string(p.port) + "/" + p.protocol);
             for (const auto& b : s.status.backends) backends.push_back(b.ip + ":" + std::to_string(b.port));
             return std::vector<std::string>{s.metadata.name, s.spec.type, s.spec.cluster_ip, join(ports),
                                             backends.empty() ? "<none>" : join(backends)};
           },
           [](const v1::Service& s) {
             return std::vector<std::string>{labels_text(s.spec.selector), s.spec.session_affinity};
           },
       })},
      {{"endpoints", "endpoint", "ep", "ciliumendpoints", "cep"},
       v1::path::kEndpoints,
       true,
       {"NAME", "ENDPOINT ID", "IDENTITY", "IPV4", "STATE"},
       {"INTERFACE", "LABELS"},
       shown_items<v1::Endpoint>({
           [](const v1::Endpoint& e) { return name_after_slash(e.pod); },
           [](const v1::Endpoint&) { return std::string("ciliumendpoint.cilium.io"); },
           [](const v1::Endpoint& e) {
             return std::vector<std::string>{name_after_slash(e.pod), std::to_string(e.id), std::to_string(e.identity),
                                             e.ipv4, e.state};
           },
           [](const v1::Endpoint& e) { return std::vector<std::string>{e.interface, labels_text(e.labels)}; },
       })},
      {{"identities", "identity", "id", "ciliumidentities"},
       v1::path::kIdentities,
       false,
       {"ID", "REFS", "LABELS"},
       {},
       shown_items<v1::Identity>({
           [](const v1::Identity& i) { return std::to_string(i.id); },
           [](const v1::Identity&) { return std::string("ciliumidentity.cilium.io"); },
           [](const v1::Identity& i) {
             return std::vector<std::string>{std::to_string(i.id),
                                             i.reserved ? "reserved" : std::to_string(i.references),
                                             labels_text(i.labels)};
           },
           [](const v1::Identity&) { return std::vector<std::string>{}; },
       })},
      {{"namespaces", "namespace", "ns"},
       v1::path::kNamespaces,
       false,
       {"NAME", "STATUS"},
       {"LABELS"},
       shown_items<v1::Namespace>({
           [](const v1::Namespace& n) { return n.metadata.name; },
           [](const v1::Namespace&) { return std::string("namespace"); },
           [](const v1::Namespace& n) { return std::vector<std::string>{n.metadata.name, n.status.phase}; },
           [](const v1::Namespace& n) { return std::vector<std::string>{labels_text(n.metadata.labels)}; },
       })},
      {{"policies", "policy", "cnp", "ccnp", "netpol", "networkpolicies", "ciliumnetworkpolicies"},
       v1::path::kPolicies,
       true,
       {"KIND", "NAME", "SELECTS", "ENDPOINTS", "RULES"},
       {"L7 RULES"},
       shown_items<v1::Policy>({
           [](const v1::Policy& p) { return p.name; },
           [](const v1::Policy& p) {
             if (p.kind == "NetworkPolicy") return std::string("networkpolicy.networking.k8s.io");
             if (p.kind == "CiliumClusterwideNetworkPolicy") return std::string("ciliumclusterwidenetworkpolicy.cilium.io");
             return std::string("ciliumnetworkpolicy.cilium.io");
           },
           [](const v1::Policy& p) {
             return std::vector<std::string>{p.kind, p.name, join(p.selects, " | "), std::to_string(p.endpoints),
                                             std::to_string(p.rules.size())};
           },
           [](const v1::Policy& p) { return std::vector<std::string>{std::to_string(p.l7_rules)}; },
       })},
  };
  return views;
}

const KindView& find_kind(const std::string& kind) {
  for (const auto& v : kinds())
    for (const auto& a : v.aliases)
      if (a == kind) return v;
  std::string known;
  for (const auto& v : kinds()) known += (known.empty() ? "" : ", ") + v.aliases.front();
  fail("unknown kind \"{}\" (known: {})", kind, known);
}

}  // namespace

std::string list_query(const GetOptions& g, bool namespaced) {
  std::string q;
  if (namespaced && !g.all_namespaces) q += std::string(v1::query::kNamespace) + "=" + api::percent_encode(g.ns);
  if (!g.selector.empty())
    q += std::string(q.empty() ? "" : "&") + v1::query::kLabelSelector + "=" + api::percent_encode(g.selector);
  return q;
}

int get_command(const ClientOptions& o, const GetOptions& g) {
  const KindView& view = find_kind(g.kind);
  const std::string& output = o.output;
  if (output != "json" && output != "yaml" && output != "name" && output != "wide" && !output.empty() &&
      output != "table")
    fail("unknown output format \"{}\" (known: json, yaml, wide, name)", output);
  if (g.all_namespaces && !g.names.empty() && view.namespaced)
    fail("a resource cannot be retrieved by name across all namespaces (drop -A and give -n NAMESPACE)");

  api::HttpClient client(o.socket);
  std::string query = list_query(g, view.namespaced);
  api::Response r = client.request("GET", view.path + (query.empty() ? "" : "?" + query));
  if (r.status / 100 != 2) throw Error(error_message(r.body));

  std::vector<Shown> listed = view.items(r.body);
  std::vector<Shown> items;
  if (g.names.empty()) {
    items = std::move(listed);
  } else {
    for (const auto& name : g.names) {
      bool found = false;
      for (const auto& item : listed)
        if (item.name == name) items.push_back(item), found = true;
      if (!found)
        fail("{} \"{}\" not found{}", view.aliases.front(), name,
             view.namespaced ? fmt::format(" in namespace \"{}\"", g.ns) : std::string());
    }
  }

  if (output == "json" || output == "yaml") {
    if (g.names.size() == 1 && items.size() == 1) {
      print_structured(output, items[0].json);
    } else {
      auto list = v1::List<nlohmann::json>::kube();
      for (auto& item : items) list.items.push_back(std::move(item.json));
      print_structured(output, list);
    }
    return 0;
  }
  if (output == "name") {
    for (const auto& item : items) std::cout << item.resource << "/" << item.name << "\n";
    return 0;
  }
  if (items.empty()) {
    if (view.namespaced && !g.all_namespaces)
      std::cerr << "No resources found in " << g.ns << " namespace.\n";
    else
      std::cerr << "No resources found\n";
    return 0;
  }
  const bool wide = output == "wide";
  const bool show_ns = view.namespaced && g.all_namespaces;
  std::vector<std::string> header;
  if (show_ns) header.emplace_back("NAMESPACE");
  header.insert(header.end(), view.header.begin(), view.header.end());
  if (wide) header.insert(header.end(), view.wide_header.begin(), view.wide_header.end());
  Table t(header);
  for (const auto& item : items) {
    std::vector<std::string> row;
    if (show_ns) row.push_back(item.ns.empty() ? "<cluster>" : item.ns);
    row.insert(row.end(), item.row.begin(), item.row.end());
    if (wide) row.insert(row.end(), item.wide_row.begin(), item.wide_row.end());
    t.add(row);
  }
  std::cout << t.render();
  return 0;
}

}  // namespace pilus::cli
