#include "cli/client_commands.h"

#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "cli/output.h"
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

std::string str(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

int apply_command(const ClientOptions& o, const std::vector<std::string>& files, bool remove,
                  const std::string& dry_run) {
  if (dry_run != "none" && dry_run != "server" && dry_run != "client")
    fail("--dry-run: \"{}\" is not one of none, server, client", dry_run);
  if (dry_run != "none" && remove) fail("--dry-run is only supported by apply");
  json sources = json::array();
  for (const auto& f : files)
    for (const auto& s : manifest::read_sources(f)) sources.push_back({{"name", s.name}, {"text", s.text}});
  // A client dry run is a server one here too: the agent is the only one that knows the state.
  std::string path = remove ? "/v1/delete" : dry_run == "none" ? "/v1/apply" : "/v1/apply?dryRun=All";
  json r = call(o, "POST", path, json{{"sources", sources}}.dump());
  // As kubectl: warnings on stderr, before the results, whatever the output format.
  for (const auto& w : r.value("warnings", json::array())) std::cerr << "Warning: " << str(w) << "\n";
  if (print_structured(o.output, r, "name")) return 0;
  const std::string suffix = dry_run == "server" ? " (server dry run)" : dry_run == "client" ? " (dry run)" : "";
  for (const auto& res : r["results"]) {
    std::string kind = res["kind"].get<std::string>();
    for (auto& c : kind) c = static_cast<char>(tolower(c));
    if (o.output == "name") {
      std::cout << kind << "/" << res["name"].get<std::string>() << "\n";
      continue;
    }
    std::string ns = res.contains("namespace") ? res["namespace"].get<std::string>() + "/" : "";
    std::cout << kind << "/" << ns << res["name"].get<std::string>() << " " << res["action"].get<std::string>() << suffix
              << "\n";
  }
  for (const auto& note : r.value("notes", json::array())) std::cout << "note: " << note.get<std::string>() << "\n";
  return 0;
}

int status_command(const ClientOptions& o, bool verbose) {
  json s = call(o, "GET", "/v1/status");
  if (print_structured(o.output, s)) return 0;
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
  // `cilium bpf ct list global` names the table; pilus has one conntrack table, the global one.
  if (map == "ct" && !pod.empty() && pod != "global")
    fail("unknown conntrack table \"{}\" (pilus has one: global)", pod);
  if (map != "ct" && map != "policy" && !pod.empty()) fail("unexpected argument \"{}\" for `pilus bpf {} list`", pod, map);
  if (map == "ct") {
    json r = call(o, "GET", "/v1/bpf/ct");
    if (print_structured(o.output, r)) return 0;
    Table t({"PROTO", "SOURCE", "DESTINATION", "SCOPE", "PKTS FWD", "PKTS REPLY", "EXPIRES", "STATE"});
    for (const auto& e : r["items"])
      t.add({str(e["protocol"]), str(e["source"]), str(e["destination"]), str(e["scope"]), str(e["packetsForward"]),
             str(e["packetsReply"]), str(e["expires"]),
             e["closing"].get<bool>() ? "closing" : e["seenReply"].get<bool>() ? "established" : "new"});
    std::cout << t.render();
  } else if (map == "ipcache") {
    json r = call(o, "GET", "/v1/bpf/ipcache");
    if (print_structured(o.output, r)) return 0;
    Table t({"PREFIX", "IDENTITY", "KIND"});
    for (const auto& e : r["items"]) t.add({str(e["prefix"]), str(e["identity"]), str(e["kind"])});
    std::cout << t.render();
  } else if (map == "endpoints" || map == "endpoint") {
    json r = call(o, "GET", "/v1/bpf/endpoints");
    if (print_structured(o.output, r)) return 0;
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
    if (print_structured(o.output, r)) return 0;
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
    if (print_structured(o.output, r)) return 0;
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

TraceEnd trace_end_from_cilium_labels(const std::vector<std::string>& labels) {
  TraceEnd end;
  for (const auto& text : labels) {
    std::string label = text;
    if (auto colon = label.find(':'); colon != std::string::npos && colon < label.find('=')) {
      std::string source = label.substr(0, colon);
      if (source != "k8s" && source != "any")
        fail("label \"{}\": only k8s labels describe a pod (source \"{}\" is not supported here)", text, source);
      label = label.substr(colon + 1);
    }
    auto eq = label.find('=');
    if (eq == std::string::npos || eq == 0) fail("label \"{}\" is not [k8s:]key=value", text);
    if (label.substr(0, eq) == "io.kubernetes.pod.namespace")
      end.ns = label.substr(eq + 1);
    else
      end.labels.push_back(label);
  }
  if (end.labels.empty()) fail("labels {} name no pod label (only a namespace)", fmt::join(labels, ","));
  return end;
}

TraceEnd trace_end_from_k8s_pod(const std::string& namespace_colon_pod) {
  auto colon = namespace_colon_pod.find(':');
  TraceEnd end;
  end.target = colon == std::string::npos ? "default/" + namespace_colon_pod
                                          : namespace_colon_pod.substr(0, colon) + "/" + namespace_colon_pod.substr(colon + 1);
  if (end.target.back() == '/' || end.target.front() == '/')
    fail("\"{}\" is not NAMESPACE:POD", namespace_colon_pod);
  return end;
}

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
  if (print_structured(o.output, r)) return 0;
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
