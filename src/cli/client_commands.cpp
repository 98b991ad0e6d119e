#include "cli/client_commands.h"

#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "api/v1/apply.h"
#include "api/v1/bpf_maps.h"
#include "api/v1/errors.h"
#include "api/v1/routes.h"
#include "api/v1/status.h"
#include "api/v1/trace.h"
#include "cli/output.h"
#include "cli/table.h"
#include "common/error.h"
#include "manifest/document.h"

namespace pilus::cli {

namespace {

namespace v1 = api::v1;

constexpr const char* kAgentAnswer = "the agent's answer";

// The answer's body, or the agent's error ({"error": ...}) thrown.
std::string call_text(const ClientOptions& o, const std::string& method, const std::string& path,
                      const std::string& body = "") {
  api::HttpClient client(o.socket);
  api::Response r = client.request(method, path, body);
  if (r.status / 100 != 2) {
    std::string message = r.body;
    try {
      message = v1::parse<v1::ErrorBody>(r.body, kAgentAnswer).error;
    } catch (const Error&) {
    }
    throw Error(message);
  }
  return std::move(r.body);
}

template <class T>
T call(const ClientOptions& o, const std::string& method, const std::string& path, const std::string& body = "") {
  return v1::parse<T>(call_text(o, method, path, body), kAgentAnswer);
}

template <class T>
bool print_structured_answer(const std::string& output, const T& answer, const std::string& human = "table") {
  if (output != "json" && output != "yaml") return print_structured(output, nlohmann::json(), human);
  return print_structured(output, nlohmann::json(answer), human);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(tolower(c));
  return s;
}

void print_results(const ClientOptions& o, const std::vector<v1::ObjectResult>& results, const std::string& suffix) {
  for (const auto& res : results) {
    std::string kind = lower(res.kind);
    if (o.output == "name") {
      std::cout << kind << "/" << res.name << "\n";
      continue;
    }
    std::string ns = res.ns.empty() ? "" : res.ns + "/";
    std::cout << kind << "/" << ns << res.name << " " << res.action << suffix << "\n";
  }
}

}  // namespace

int apply_command(const ClientOptions& o, const std::vector<std::string>& files, bool remove,
                  const std::string& dry_run) {
  if (dry_run != "none" && dry_run != "server" && dry_run != "client")
    fail("--dry-run: \"{}\" is not one of none, server, client", dry_run);
  if (dry_run != "none" && remove) fail("--dry-run is only supported by apply");
  v1::ApplyRequest request;
  for (const auto& f : files)
    for (auto& s : manifest::read_sources(f)) request.sources.push_back({std::move(s.name), std::move(s.text)});
  std::string body = nlohmann::json(request).dump();
  request = {};
  if (remove) {
    auto r = call<v1::DeleteResponse>(o, "POST", v1::path::kDelete, body);
    if (print_structured_answer(o.output, r, "name")) return 0;
    print_results(o, r.results, "");
    return 0;
  }
  // A client dry run is a server one here too: the agent is the only one that knows the state.
  std::string path = v1::path::kApply;
  if (dry_run != "none") path += std::string("?") + v1::query::kDryRun + "=" + v1::query::kDryRunAll;
  auto r = call<v1::ApplyResponse>(o, "POST", path, body);
  // As kubectl: warnings on stderr, before the results, whatever the output format.
  for (const auto& w : r.warnings) std::cerr << "Warning: " << w << "\n";
  if (print_structured_answer(o.output, r, "name")) return 0;
  print_results(o, r.results, dry_run == "server" ? " (server dry run)" : dry_run == "client" ? " (dry run)" : "");
  for (const auto& note : r.notes) std::cout << "note: " << note << "\n";
  return 0;
}

int status_command(const ClientOptions& o, bool verbose) {
  auto s = call<v1::Status>(o, "GET", v1::path::kStatus);
  if (print_structured_answer(o.output, s)) return 0;
  std::cout << fmt::format("Agent:        {}   (uptime {}s, kernel {})\n", s.health, s.uptime_seconds, s.kernel);
  std::cout << fmt::format("Datapath:     {}, pinned under {}\n", s.datapath, s.bpf_root);
  std::cout << fmt::format("Pod CIDR:     {} (node address {})\n", s.pod_cidr, s.router_ip);
  std::cout << fmt::format("Endpoints:    {}\n", s.endpoints);
  std::cout << fmt::format("Identities:   {} (pod identities in use)\n", s.identities);
  std::cout << fmt::format("Policies:     {} (L7: {})\n", s.policies, s.l7_policy);
  const auto& pm = s.policy_map;
  std::cout << fmt::format("Policy map:   {}/{} entries{}\n", pm.entries, pm.max_entries,
                           pm.last_refusal ? "; " + *pm.last_refusal : "");
  if (const auto& p = s.proxy; p.state == "running") {
    auto n = [](const std::optional<uint64_t>& v) { return v.value_or(0); };
    std::cout << fmt::format("L7 proxy:     running on {}, {} policy entries redirect, {} connections redirected "
                             "({} active), {} requests: {} forwarded, {} denied, {} malformed, {} timeouts, "
                             "{} upstream errors\n",
                             p.address.value_or(""), n(p.redirect_entries), n(p.redirects), n(p.active_connections),
                             n(p.requests), n(p.forwarded), n(p.denied), n(p.parse_errors), n(p.timeouts),
                             n(p.upstream_errors));
  } else {
    std::cout << "L7 proxy:     disabled\n";
  }
  std::cout << fmt::format("IPv6:         {}\n", s.ipv6);
  std::cout << fmt::format("Conntrack GC: {} runs, {} expired entries deleted\n", s.conntrack_gc.runs,
                           s.conntrack_gc.deleted);
  std::cout << fmt::format("Lost events:  {} (datapath events the ring buffer had no room for)\n", s.lost_events);
  size_t ok = 0, total = 0;
  std::string missing;
  for (const auto& f : s.kernel_features) {
    total++;
    if (f.available)
      ok++;
    else
      missing += (missing.empty() ? "" : ", ") + f.name;
  }
  std::cout << fmt::format("Kernel:       {}/{} BPF features available{}\n", ok, total,
                           missing.empty() ? "" : " (missing: " + missing + ")");
  if (verbose) {
    Table t({"FEATURE", "REQUIRED", "AVAILABLE"});
    for (const auto& f : s.kernel_features) t.add({f.name, f.required ? "yes" : "no", f.available ? "yes" : "no"});
    std::cout << "\n" << t.render();
  }
  Table maps({"BPF MAP", "ENTRIES", "MAX", "PRESSURE"});
  for (const auto& m : s.maps)
    maps.add({m.name, std::to_string(m.entries), std::to_string(m.max_entries), fmt::format("{:.1f}%", m.pressure * 100)});
  std::cout << "\n" << maps.render();
  return 0;
}

int bpf_command(const ClientOptions& o, const std::string& map, const std::string& pod) {
  // `cilium bpf ct list global` names the table; pilus has one conntrack table, the global one.
  if (map == "ct" && !pod.empty() && pod != "global")
    fail("unknown conntrack table \"{}\" (pilus has one: global)", pod);
  if (map != "ct" && map != "policy" && !pod.empty()) fail("unexpected argument \"{}\" for `pilus bpf {} list`", pod, map);
  using std::to_string;
  if (map == "ct") {
    auto r = call<v1::ConntrackList>(o, "GET", v1::path::kBpfConntrack);
    if (print_structured_answer(o.output, r)) return 0;
    Table t({"PROTO", "SOURCE", "DESTINATION", "SCOPE", "PKTS FWD", "PKTS REPLY", "EXPIRES", "STATE"});
    for (const auto& e : r.items)
      t.add({e.protocol, e.source, e.destination, e.scope, to_string(e.packets_forward), to_string(e.packets_reply),
             to_string(e.expires), e.closing ? "closing" : e.seen_reply ? "established" : "new"});
    std::cout << t.render();
  } else if (map == "ipcache") {
    auto r = call<v1::IpcacheList>(o, "GET", v1::path::kBpfIpcache);
    if (print_structured_answer(o.output, r)) return 0;
    Table t({"PREFIX", "IDENTITY", "KIND"});
    for (const auto& e : r.items) t.add({e.prefix, to_string(e.identity), e.kind});
    std::cout << t.render();
  } else if (map == "endpoints" || map == "endpoint") {
    auto r = call<v1::BpfEndpoints>(o, "GET", v1::path::kBpfEndpoints);
    if (print_structured_answer(o.output, r)) return 0;
    Table t({"IP", "ENDPOINT", "IFINDEX", "IDENTITY"});
    for (const auto& e : r.items) t.add({e.ip, to_string(e.endpoint_id), to_string(e.ifindex), to_string(e.identity)});
    std::cout << t.render() << "\n";
    Table c({"ENDPOINT", "DIRECTION", "REASON", "PACKETS", "BYTES"});
    for (const auto& e : r.counters)
      c.add({to_string(e.endpoint_id), e.direction, e.reason, to_string(e.packets), to_string(e.bytes)});
    std::cout << c.render();
  } else if (map == "policy") {
    if (pod.empty()) fail("usage: pilus bpf policy get NAMESPACE/POD");
    auto r = call<v1::BpfPolicy>(
        o, "GET", std::string(v1::path::kBpfPolicy) + "?" + v1::query::kPod + "=" + api::percent_encode(pod));
    if (print_structured_answer(o.output, r)) return 0;
    std::cout << fmt::format("Pod {} (endpoint {}): ingress {}, egress {}\n\n", r.pod, r.endpoint_id,
                             r.default_deny.ingress ? "default deny" : "no policy (allow)",
                             r.default_deny.egress ? "default deny" : "no policy (allow)");
    Table t({"DIRECTION", "VERDICT", "IDENTITY", "LABELS", "PORT", "RULE"});
    for (const auto& e : r.items)
      t.add({e.direction, e.verdict, e.identity == 0 ? "ANY" : to_string(e.identity), e.labels, e.port, e.rule});
    std::cout << t.render();
  } else if (map == "lb") {
    auto r = call<v1::BpfLb>(o, "GET", v1::path::kBpfLb);
    if (print_structured_answer(o.output, r)) return 0;
    std::cout << fmt::format("Backend choice: {}, Maglev table size {} (prime)\n\n", r.algorithm, r.maglev_table_size);
    Table t({"SERVICE ADDRESS", "SERVICE", "BACKEND ADDRESS (ID)", "STATE", "MAGLEV SLOTS"});
    for (const auto& s : r.services) {
      std::string frontend = s.vip + ":" + to_string(s.port) + "/" + s.protocol;
      if (s.backends.empty()) t.add({frontend, s.service, "<none: refused>", "", ""});
      for (const auto& b : s.backends)
        t.add({frontend, s.service, b.address + ":" + to_string(b.port) + " (" + to_string(b.id) + ")", b.state,
               to_string(b.maglev_slots)});
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
  namespace query = v1::query;
  auto end_query = [](const std::string& which, const TraceEnd& end) {
    std::string labels;
    for (const auto& l : end.labels) labels += (labels.empty() ? "" : ",") + l;
    return which + "=" + api::percent_encode(end.target) + "&" + which + query::kEndLabelsSuffix + "=" +
           api::percent_encode(labels) + "&" + which + query::kEndNamespaceSuffix + "=" + api::percent_encode(end.ns);
  };
  auto r = call<v1::PolicyTrace>(o, "GET",
                                 std::string(v1::path::kPolicyTrace) + "?" + end_query(query::kFrom, from) + "&" +
                                     end_query(query::kTo, to) + "&" + query::kPort + "=" + api::percent_encode(port) +
                                     "&" + query::kProtocol + "=" + api::percent_encode(proto));
  if (print_structured_answer(o.output, r)) return 0;
  std::cout << fmt::format("{} (ID:{}) -> {} (ID:{}) {}/{}\n", r.from, r.from_identity, r.to, r.to_identity, r.port,
                           proto);
  for (const auto& s : r.steps)
    std::cout << fmt::format("  {} {}: {}{}  ({})\n", s.endpoint, s.direction, s.verdict,
                             s.reason.empty() ? "" : " " + s.reason, s.decided_by);
  std::cout << "Final verdict: " << r.verdict << "\n";
  return 0;
}

}  // namespace pilus::cli
