#include "cli/get_command.h"

#include <functional>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "cli/output.h"
#include "cli/table.h"
#include "common/error.h"

namespace pilus::cli {

namespace {

using nlohmann::json;

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string join(const json& list, const std::function<std::string(const json&)>& text, const char* sep = ",") {
  std::string s;
  for (const auto& item : list) s += (s.empty() ? "" : sep) + text(item);
  return s;
}

std::string labels_text(const json& labels) {
  std::string s;
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) s += (s.empty() ? "" : ",") + k + "=" + str(v);
  } else if (labels.is_array()) {
    s = join(labels, str);
  }
  return s.empty() ? "<none>" : s;
}

// One kind as `get` shows it: where its list is, how kubectl would name it, its table.
struct KindView {
  std::vector<std::string> aliases;  // the first is the canonical plural
  std::string path;
  bool namespaced;
  std::function<std::string(const json&)> name_of;
  std::function<std::string(const json&)> resource_of;  // -o name: "pod", "ciliumnetworkpolicy.cilium.io"
  std::vector<std::string> header, wide_header;
  std::function<std::vector<std::string>(const json&)> row, wide_row;
};

const std::vector<KindView>& kinds() {
  static const std::vector<KindView> views = {
      {{"pods", "pod", "po"},
       "/v1/pods",
       true,
       [](const json& p) { return str(p["metadata"]["name"]); },
       [](const json&) { return std::string("pod"); },
       {"NAME", "PHASE", "IP", "IDENTITY", "OWNER"},
       {"NODE", "NETNS", "ENDPOINT", "LABELS"},
       [](const json& p) {
         return std::vector<std::string>{str(p["metadata"]["name"]), str(p["status"]["phase"]),
                                         str(p["status"]["podIP"]), str(p["status"]["identity"]),
                                         str(p["status"].value("owner", json("pilus")))};
       },
       [](const json& p) {
         return std::vector<std::string>{str(p["spec"].value("nodeName", json(""))), str(p["status"]["netns"]),
                                         str(p["status"]["endpointID"]), labels_text(p["metadata"]["labels"])};
       }},
      {{"services", "service", "svc"},
       "/v1/services",
       true,
       [](const json& s) { return str(s["metadata"]["name"]); },
       [](const json&) { return std::string("service"); },
       {"NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "BACKENDS"},
       {"SELECTOR", "AFFINITY"},
       [](const json& s) {
         std::string ports = join(s["spec"]["ports"], [](const json& p) { return str(p["port"]) + "/" + str(p["protocol"]); });
         std::string backends =
             join(s["status"]["backends"], [](const json& b) { return str(b["ip"]) + ":" + str(b["port"]); });
         return std::vector<std::string>{str(s["metadata"]["name"]), str(s["spec"]["type"]), str(s["spec"]["clusterIP"]),
                                         ports, backends.empty() ? "<none>" : backends};
       },
       [](const json& s) {
         return std::vector<std::string>{labels_text(s["spec"]["selector"]), str(s["spec"]["sessionAffinity"])};
       }},
      {{"endpoints", "endpoint", "ep", "ciliumendpoints", "cep"},
       "/v1/endpoints",
       true,
       [](const json& e) {
         std::string pod = str(e["pod"]);
         return pod.substr(pod.find('/') + 1);
       },
       [](const json&) { return std::string("ciliumendpoint.cilium.io"); },
       {"NAME", "ENDPOINT ID", "IDENTITY", "IPV4", "STATE"},
       {"INTERFACE", "LABELS"},
       [](const json& e) {
         std::string pod = str(e["pod"]);
         return std::vector<std::string>{pod.substr(pod.find('/') + 1), str(e["id"]), str(e["identity"]), str(e["ipv4"]),
                                         str(e["state"])};
       },
       [](const json& e) { return std::vector<std::string>{str(e["interface"]), labels_text(e["labels"])}; }},
      {{"identities", "identity", "id", "ciliumidentities"},
       "/v1/identities",
       false,
       [](const json& i) { return str(i["id"]); },
       [](const json&) { return std::string("ciliumidentity.cilium.io"); },
       {"ID", "REFS", "LABELS"},
       {},
       [](const json& i) {
         return std::vector<std::string>{str(i["id"]), i["reserved"].get<bool>() ? "reserved" : str(i["references"]),
                                         labels_text(i["labels"])};
       },
       [](const json&) { return std::vector<std::string>{}; }},
      {{"namespaces", "namespace", "ns"},
       "/v1/namespaces",
       false,
       [](const json& n) { return str(n["metadata"]["name"]); },
       [](const json&) { return std::string("namespace"); },
       {"NAME", "STATUS"},
       {"LABELS"},
       [](const json& n) {
         return std::vector<std::string>{str(n["metadata"]["name"]), str(n.value("status", json::object()).value("phase", json("Active")))};
       },
       [](const json& n) { return std::vector<std::string>{labels_text(n["metadata"]["labels"])}; }},
      {{"policies", "policy", "cnp", "ccnp", "netpol", "networkpolicies", "ciliumnetworkpolicies"},
       "/v1/policies",
       true,
       [](const json& p) { return str(p["name"]); },
       [](const json& p) {
         std::string kind = str(p["kind"]);
         if (kind == "NetworkPolicy") return std::string("networkpolicy.networking.k8s.io");
         if (kind == "CiliumClusterwideNetworkPolicy") return std::string("ciliumclusterwidenetworkpolicy.cilium.io");
         return std::string("ciliumnetworkpolicy.cilium.io");
       },
       {"KIND", "NAME", "SELECTS", "ENDPOINTS", "RULES"},
       {"L7 RULES"},
       [](const json& p) {
         return std::vector<std::string>{str(p["kind"]), str(p["name"]), join(p["selects"], str, " | "),
                                         str(p.value("endpoints", json(0))), std::to_string(p["rules"].size())};
       },
       [](const json& p) { return std::vector<std::string>{str(p["l7Rules"])}; }},
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

// An item's namespace as the views give it ("" for cluster-scoped ones).
std::string namespace_of(const json& item) {
  if (item.contains("metadata") && item["metadata"].contains("namespace")) return str(item["metadata"]["namespace"]);
  if (item.contains("namespace") && item["namespace"].is_string()) return str(item["namespace"]);
  if (item.contains("pod")) {
    std::string pod = str(item["pod"]);
    return pod.substr(0, pod.find('/'));
  }
  return "";
}

}  // namespace

std::string list_query(const GetOptions& g, bool namespaced) {
  std::string q;
  if (namespaced && !g.all_namespaces) q += "namespace=" + api::percent_encode(g.ns);
  if (!g.selector.empty()) q += std::string(q.empty() ? "" : "&") + "labelSelector=" + api::percent_encode(g.selector);
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
  json list = json::parse(r.body, nullptr, false);
  if (r.status / 100 != 2)
    throw Error(list.is_object() && list.contains("error") ? list["error"].get<std::string>() : r.body);

  json items = json::array();
  if (g.names.empty()) {
    items = list["items"];
  } else {
    for (const auto& name : g.names) {
      bool found = false;
      for (const auto& item : list["items"])
        if (view.name_of(item) == name) items.push_back(item), found = true;
      if (!found)
        fail("{} \"{}\" not found{}", view.aliases.front(), name,
             view.namespaced ? fmt::format(" in namespace \"{}\"", g.ns) : std::string());
    }
  }

  if (output == "json" || output == "yaml") {
    json shown = items;
    if (g.names.size() == 1 && items.size() == 1) {
      shown = items[0];
    } else {
      shown = list;
      shown["items"] = items;
      if (!shown.contains("kind")) shown["kind"] = "List", shown["apiVersion"] = "v1";
    }
    print_structured(output, shown);
    return 0;
  }
  if (output == "name") {
    for (const auto& item : items) std::cout << view.resource_of(item) << "/" << view.name_of(item) << "\n";
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
    if (show_ns) {
      std::string ns = namespace_of(item);
      row.push_back(ns.empty() ? "<cluster>" : ns);
    }
    auto cells = view.row(item);
    row.insert(row.end(), cells.begin(), cells.end());
    if (wide) {
      auto more = view.wide_row(item);
      row.insert(row.end(), more.begin(), more.end());
    }
    t.add(row);
  }
  std::cout << t.render();
  return 0;
}

}  // namespace pilus::cli
