#include "cli/client_commands.h"

#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "cli/table.h"
#include "common/error.h"
#include "manifest/document.h"

namespace pilus::cli {

namespace {

using nlohmann::json;

json call(const ClientOptions& o, const std::string& method, const std::string& path, const std::string& body = "") {
  api::HttpClient client(o.socket);
  api::Response r = client.request(method, path, body);
  json j = json::parse(r.body, nullptr, false);
  if (r.status / 100 != 2) {
    std::string msg = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : r.body;
    throw Error(msg);
  }
  return j;
}

std::string labels_text(const json& labels) {
  std::string s;
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it)
      s += (s.empty() ? "" : ",") + it.key() + "=" + it.value().get<std::string>();
  } else if (labels.is_array()) {
    for (const auto& l : labels) s += (s.empty() ? "" : ",") + l.get<std::string>();
  }
  return s.empty() ? "<none>" : s;
}

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

json filter_by_name(json items, const std::string& name, const char* field) {
  if (name.empty()) return items;
  json out = json::array();
  for (const auto& it : items) {
    const json& v = field[0] == 'm' ? it["metadata"]["name"] : it[field];
    if (str(v) == name) out.push_back(it);
  }
  if (out.empty()) fail("\"{}\" not found", name);
  return out;
}

}  // namespace

int apply_command(const ClientOptions& o, const std::vector<std::string>& files, bool remove) {
  json sources = json::array();
  for (const auto& f : files)
    for (const auto& s : manifest::read_sources(f)) sources.push_back({{"name", s.name}, {"text", s.text}});
  json r = call(o, "POST", remove ? "/v1/delete" : "/v1/apply", json{{"sources", sources}}.dump());
  if (o.output == "json") {
    std::cout << r.dump(2) << "\n";
    return 0;
  }
  for (const auto& res : r["results"]) {
    std::string kind = res["kind"].get<std::string>();
    for (auto& c : kind) c = static_cast<char>(tolower(c));
    std::string ns = res.contains("namespace") ? res["namespace"].get<std::string>() + "/" : "";
    std::cout << kind << "/" << ns << res["name"].get<std::string>() << " " << res["action"].get<std::string>() << "\n";
  }
  for (const auto& note : r.value("notes", json::array())) std::cout << "note: " << note.get<std::string>() << "\n";
  return 0;
}

int get_command(const ClientOptions& o, const std::string& kind, const std::string& name) {
  if (kind == "pods" || kind == "pod" || kind == "po") {
    json r = call(o, "GET", "/v1/pods");
    if (!name.empty()) r["items"] = filter_by_name(r["items"], name, "metadata");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"NAMESPACE", "NAME", "PHASE", "IP", "IDENTITY", "NETNS", "LABELS"});
    for (const auto& p : r["items"])
      t.add({str(p["metadata"]["namespace"]), str(p["metadata"]["name"]), str(p["status"]["phase"]),
             str(p["status"]["podIP"]), str(p["status"]["identity"]), str(p["status"]["netns"]),
             labels_text(p["metadata"]["labels"])});
    std::cout << t.render();
  } else if (kind == "identities" || kind == "identity" || kind == "id") {
    json r = call(o, "GET", "/v1/identities");
    if (!name.empty()) r["items"] = filter_by_name(r["items"], name, "id");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"ID", "REFS", "LABELS"});
    for (const auto& i : r["items"])
      t.add({str(i["id"]), i["reserved"].get<bool>() ? "reserved" : str(i["references"]), labels_text(i["labels"])});
    std::cout << t.render();
  } else if (kind == "endpoints" || kind == "endpoint" || kind == "ep") {
    json r = call(o, "GET", "/v1/endpoints");
    if (!name.empty()) r["items"] = filter_by_name(r["items"], name, "pod");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"ENDPOINT", "POD", "IPV4", "IDENTITY", "INTERFACE", "STATE", "LABELS"});
    for (const auto& e : r["items"])
      t.add({str(e["id"]), str(e["pod"]), str(e["ipv4"]), str(e["identity"]), str(e["interface"]), str(e["state"]),
             labels_text(e["labels"])});
    std::cout << t.render();
  } else if (kind == "namespaces" || kind == "namespace" || kind == "ns") {
    json r = call(o, "GET", "/v1/namespaces");
    if (!name.empty()) r["items"] = filter_by_name(r["items"], name, "metadata");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"NAME", "LABELS"});
    for (const auto& n : r["items"]) t.add({str(n["metadata"]["name"]), labels_text(n["metadata"]["labels"])});
    std::cout << t.render();
  } else if (kind == "policies" || kind == "policy" || kind == "cnp" || kind == "netpol") {
    json r = call(o, "GET", "/v1/policies");
    if (!name.empty()) r["items"] = filter_by_name(r["items"], name, "name");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"KIND", "NAMESPACE", "NAME", "SELECTS", "ENDPOINTS", "RULES", "L7 RULES"});
    for (const auto& p : r["items"]) {
      std::string selects;
      for (const auto& s : p["selects"]) selects += (selects.empty() ? "" : " | ") + s.get<std::string>();
      t.add({str(p["kind"]), p["namespace"].get<std::string>().empty() ? "<cluster>" : str(p["namespace"]),
             str(p["name"]), selects, str(p.value("endpoints", json(0))), std::to_string(p["rules"].size()),
             str(p["l7Rules"])});
    }
    std::cout << t.render();
  } else if (kind == "services" || kind == "service" || kind == "svc") {
    json r = call(o, "GET", "/v1/services");
    if (!name.empty()) r["items"] = filter_by_name(r["items"], name, "metadata");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "BACKENDS", "AFFINITY"});
    for (const auto& s : r["items"]) {
      std::string ports, backends;
      for (const auto& p : s["spec"]["ports"])
        ports += (ports.empty() ? "" : ",") + str(p["port"]) + "/" + str(p["protocol"]);
      for (const auto& b : s["status"]["backends"])
        backends += (backends.empty() ? "" : ",") + str(b["ip"]) + ":" + str(b["port"]);
      t.add({str(s["metadata"]["namespace"]), str(s["metadata"]["name"]), str(s["spec"]["type"]),
             str(s["spec"]["clusterIP"]), ports, backends.empty() ? "<none>" : backends,
             str(s["spec"]["sessionAffinity"])});
    }
    std::cout << t.render();
  } else {
    fail("unknown kind \"{}\" (known: pods, endpoints, identities, namespaces, policies, services)", kind);
  }
  return 0;
}

int status_command(const ClientOptions& o, bool verbose) {
  json s = call(o, "GET", "/v1/status");
  if (o.output == "json") return std::cout << s.dump(2) << "\n", 0;
  std::cout << fmt::format("Agent:        {}   (uptime {}s, kernel {})\n", str(s["health"]), str(s["uptimeSeconds"]),
                           str(s["kernel"]));
  std::cout << fmt::format("Datapath:     {}, pinned under {}\n", str(s["datapath"]), str(s["bpfRoot"]));
  std::cout << fmt::format("Pod CIDR:     {} (node address {})\n", str(s["podCIDR"]), str(s["routerIP"]));
  std::cout << fmt::format("Endpoints:    {}\n", str(s["endpoints"]));
  std::cout << fmt::format("Identities:   {} (pod identities in use)\n", str(s["identities"]));
  std::cout << fmt::format("Policies:     {} (L7: {})\n", str(s["policies"]), str(s["l7Policy"]));
  if (s.contains("policyMap")) {
    const json& pm = s["policyMap"];
    std::cout << fmt::format("Policy map:   {}/{} entries{}\n", str(pm["entries"]), str(pm["maxEntries"]),
                             pm["lastRefusal"].is_string() ? "; " + pm["lastRefusal"].get<std::string>() : "");
  }
  if (s.contains("proxy") && s["proxy"].value("state", "") == "running") {
    const json& p = s["proxy"];
    std::cout << fmt::format("L7 proxy:     running on {}, {} policy entries redirect, {} connections redirected "
                             "({} active), {} requests: {} forwarded, {} denied, {} malformed, {} timeouts, "
                             "{} upstream errors\n",
                             str(p["address"]), str(p["redirectEntries"]), str(p["redirects"]),
                             str(p["activeConnections"]), str(p["requests"]), str(p["forwarded"]), str(p["denied"]),
                             str(p["parseErrors"]), str(p["timeouts"]), str(p["upstreamErrors"]));
  } else {
    std::cout << "L7 proxy:     disabled\n";
  }
  std::cout << fmt::format("IPv6:         {}\n", str(s["ipv6"]));
  std::cout << fmt::format("Conntrack GC: {} runs, {} expired entries deleted\n", str(s["conntrackGC"]["runs"]),
                           str(s["conntrackGC"]["deleted"]));
  std::cout << fmt::format("Lost events:  {} (datapath events the ring buffer had no room for)\n", str(s["lostEvents"]));
  size_t ok = 0, total = 0;
  std::string missing;
  for (const auto& f : s["kernelFeatures"]) {
    total++;
    if (f["available"].get<bool>())
      ok++;
    else
      missing += (missing.empty() ? "" : ", ") + str(f["name"]);
  }
  std::cout << fmt::format("Kernel:       {}/{} BPF features available{}\n", ok, total,
                           missing.empty() ? "" : " (missing: " + missing + ")");
  if (verbose) {
    Table t({"FEATURE", "REQUIRED", "AVAILABLE"});
    for (const auto& f : s["kernelFeatures"])
      t.add({str(f["name"]), f["required"].get<bool>() ? "yes" : "no", f["available"].get<bool>() ? "yes" : "no"});
    std::cout << "\n" << t.render();
  }
  Table maps({"BPF MAP", "ENTRIES", "MAX", "PRESSURE"});
  for (const auto& m : s["maps"])
    maps.add({str(m["name"]), str(m["entries"]), str(m["maxEntries"]),
              fmt::format("{:.1f}%", m["pressure"].get<double>() * 100)});
  std::cout << "\n" << maps.render();
  return 0;
}

int bpf_command(const ClientOptions& o, const std::string& map, const std::string& pod) {
  if (map == "ct") {
    json r = call(o, "GET", "/v1/bpf/ct");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"PROTO", "SOURCE", "DESTINATION", "SCOPE", "PKTS FWD", "PKTS REPLY", "EXPIRES", "STATE"});
    for (const auto& e : r["items"])
      t.add({str(e["protocol"]), str(e["source"]), str(e["destination"]), str(e["scope"]), str(e["packetsForward"]),
             str(e["packetsReply"]), str(e["expires"]),
             e["closing"].get<bool>() ? "closing" : e["seenReply"].get<bool>() ? "established" : "new"});
    std::cout << t.render();
  } else if (map == "ipcache") {
    json r = call(o, "GET", "/v1/bpf/ipcache");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"PREFIX", "IDENTITY", "KIND"});
    for (const auto& e : r["items"]) t.add({str(e["prefix"]), str(e["identity"]), str(e["kind"])});
    std::cout << t.render();
  } else if (map == "endpoints" || map == "endpoint") {
    json r = call(o, "GET", "/v1/bpf/endpoints");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    Table t({"IP", "ENDPOINT", "IFINDEX", "IDENTITY"});
    for (const auto& e : r["items"]) t.add({str(e["ip"]), str(e["endpointID"]), str(e["ifindex"]), str(e["identity"])});
    std::cout << t.render() << "\n";
    Table c({"ENDPOINT", "DIRECTION", "REASON", "PACKETS", "BYTES"});
    for (const auto& e : r["counters"])
      c.add({str(e["endpointID"]), str(e["direction"]), str(e["reason"]), str(e["packets"]), str(e["bytes"])});
    std::cout << c.render();
  } else if (map == "policy") {
    if (pod.empty()) fail("usage: pilus bpf policy get NAMESPACE/POD");
    json r = call(o, "GET", "/v1/bpf/policy?pod=" + api::percent_encode(pod));
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    std::cout << fmt::format("Pod {} (endpoint {}): ingress {}, egress {}\n\n", str(r["pod"]), str(r["endpointID"]),
                             r["defaultDeny"]["ingress"].get<bool>() ? "default deny" : "no policy (allow)",
                             r["defaultDeny"]["egress"].get<bool>() ? "default deny" : "no policy (allow)");
    Table t({"DIRECTION", "VERDICT", "IDENTITY", "LABELS", "PORT", "RULE"});
    for (const auto& e : r["items"])
      t.add({str(e["direction"]), str(e["verdict"]), str(e["identity"]) == "0" ? "ANY" : str(e["identity"]),
             str(e["labels"]), str(e["port"]), str(e["rule"])});
    std::cout << t.render();
  } else if (map == "lb") {
    json r = call(o, "GET", "/v1/bpf/lb");
    if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
    std::cout << fmt::format("Backend choice: {}, Maglev table size {} (prime)\n\n", str(r["algorithm"]),
                             str(r["maglev_table_size"]));
    Table t({"SERVICE ADDRESS", "SERVICE", "BACKEND ADDRESS (ID)", "STATE", "MAGLEV SLOTS"});
    for (const auto& s : r["services"]) {
      std::string frontend = str(s["vip"]) + ":" + str(s["port"]) + "/" + str(s["protocol"]);
      if (s["backends"].empty()) t.add({frontend, str(s["service"]), "<none: refused>", "", ""});
      for (const auto& b : s["backends"])
        t.add({frontend, str(s["service"]), str(b["address"]) + ":" + str(b["port"]) + " (" + str(b["id"]) + ")",
               str(b["state"]), str(b["maglev_slots"])});
    }
    std::cout << t.render();
  } else {
    fail("unknown BPF map \"{}\" (known: ct, ipcache, endpoints, policy, lb)", map);
  }
  return 0;
}

}  // namespace pilus::cli

namespace pilus::cli {

int policy_trace_command(const ClientOptions& o, const TraceEnd& from, const TraceEnd& to, const std::string& dport) {
  std::string port = dport, proto = "tcp";
  if (auto slash = dport.find('/'); slash != std::string::npos) {
    port = dport.substr(0, slash);
    proto = dport.substr(slash + 1);
    for (auto& c : proto) c = static_cast<char>(tolower(c));
  }
  auto query = [](const std::string& which, const TraceEnd& end) {
    std::string labels;
    for (const auto& l : end.labels) labels += (labels.empty() ? "" : ",") + l;
    return which + "=" + api::percent_encode(end.target) + "&" + which + "Labels=" + api::percent_encode(labels) + "&" +
           which + "Namespace=" + api::percent_encode(end.ns);
  };
  json r = call(o, "GET",
                "/v1/policy/trace?" + query("from", from) + "&" + query("to", to) + "&port=" + api::percent_encode(port) +
                    "&protocol=" + api::percent_encode(proto));
  if (o.output == "json") return std::cout << r.dump(2) << "\n", 0;
  std::cout << fmt::format("{} (ID:{}) -> {} (ID:{}) {}/{}\n", str(r["from"]), str(r["fromIdentity"]), str(r["to"]),
                           str(r["toIdentity"]), str(r["port"]), proto);
  for (const auto& s : r["steps"]) {
    std::cout << fmt::format("  {} {}: {}{}  ({})\n", str(s.value("endpoint", json(""))),
                             str(s.value("direction", json(""))), str(s["verdict"]),
                             s["reason"].get<std::string>().empty() ? "" : " " + str(s["reason"]), str(s["decidedBy"]));
  }
  std::cout << "Final verdict: " << str(r["verdict"]) << "\n";
  return 0;
}

}  // namespace pilus::cli
