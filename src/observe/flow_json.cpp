// Hubble flow JSON writing and reading, field by field, so the CLI can re-render what the agent sent.
#include "observe/flow_json.h"

#include <cctype>
#include <charconv>

#include "common/error.h"
#include "datapath/drop_reason_names.h"
#include "observe/flow_time.h"

namespace pilus::observe {

namespace {

using nlohmann::json;

bool allowed(Verdict v) { return v != Verdict::Dropped && v != Verdict::Error; }

std::string policy_list_key(const Flow& f) {
  std::string key = f.direction == TrafficDirection::Egress ? "egress_" : "ingress_";
  return key + (allowed(f.verdict) ? "allowed_by" : "denied_by");
}

// Hubble's Policy {name, namespace, labels, kind} (labels as Cilium derives them), plus
// pilus's rule_index and rule for the one rule that decided.
json policy_to_json(const FlowPolicy& p) {
  json j = {{"name", p.name}};
  if (!p.namespace_name.empty()) j["namespace"] = p.namespace_name;
  if (!p.kind.empty()) {
    j["kind"] = p.kind;
    json labels = {"k8s:io.cilium.k8s.policy.derived-from=" + p.kind, "k8s:io.cilium.k8s.policy.name=" + p.name};
    if (!p.namespace_name.empty()) labels.push_back("k8s:io.cilium.k8s.policy.namespace=" + p.namespace_name);
    j["labels"] = labels;
  }
  if (p.rule_index >= 0) j["rule_index"] = p.rule_index;
  if (!p.rule.empty()) j["rule"] = p.rule;
  return j;
}

json endpoint_to_json(const FlowEndpoint& ep) {
  json j = json::object();
  if (ep.endpoint_id != 0) j["ID"] = ep.endpoint_id;
  j["identity"] = ep.identity;
  if (!ep.namespace_name.empty()) j["namespace"] = ep.namespace_name;
  if (!ep.labels.empty()) j["labels"] = ep.labels;
  if (!ep.pod_name.empty()) j["pod_name"] = ep.pod_name;
  return j;
}

// Field readers that name the field when its type is wrong.
const json* member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string get_string(const json& j, const char* key, const char* where) {
  const json* v = member(j, key);
  if (!v) return {};
  if (!v->is_string()) fail("flow JSON: {}.{} must be a string", where, key);
  return v->get<std::string>();
}

uint64_t get_uint(const json& j, const char* key, const char* where, uint64_t max) {
  const json* v = member(j, key);
  if (!v) return 0;
  uint64_t n = 0;
  if (v->is_number_unsigned()) {
    n = v->get<uint64_t>();
  } else if (v->is_number_integer() && v->get<int64_t>() >= 0) {
    n = static_cast<uint64_t>(v->get<int64_t>());
  } else if (v->is_string()) {
    // protobuf JSON writes 64-bit integers as strings; accept them too.
    const std::string s = v->get<std::string>();
    size_t used = 0;
    try {
      n = std::stoull(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size()) fail("flow JSON: {}.{} must be a number", where, key);
  } else {
    fail("flow JSON: {}.{} must be a non-negative number", where, key);
  }
  if (n > max) fail("flow JSON: {}.{} is out of range", where, key);
  return n;
}

bool get_bool(const json& j, const char* key, const char* where) {
  const json* v = member(j, key);
  if (!v) return false;
  if (!v->is_boolean()) fail("flow JSON: {}.{} must be true or false", where, key);
  return v->get<bool>();
}

const json& get_object(const json& j, const char* key, const char* where) {
  static const json kEmpty = json::object();
  const json* v = member(j, key);
  if (!v) return kEmpty;
  if (!v->is_object()) fail("flow JSON: {}.{} must be an object", where, key);
  return *v;
}

endpoint::Ipv4 get_ip(const json& j, const char* key) {
  std::string text = get_string(j, key, "IP");
  if (text.empty()) return {};
  try {
    return endpoint::parse_ipv4(text);
  } catch (const Error& e) {
    fail("flow JSON: IP.{}: {}", key, e.what());
  }
}

FlowEndpoint endpoint_from_json(const json& j, const char* where) {
  FlowEndpoint ep;
  ep.endpoint_id = static_cast<uint16_t>(get_uint(j, "ID", where, UINT16_MAX));
  ep.identity = static_cast<uint32_t>(get_uint(j, "identity", where, UINT32_MAX));
  ep.namespace_name = get_string(j, "namespace", where);
  ep.pod_name = get_string(j, "pod_name", where);
  if (const json* labels = member(j, "labels")) {
    if (!labels->is_array()) fail("flow JSON: {}.labels must be an array", where);
    for (const auto& l : *labels) {
      if (!l.is_string()) fail("flow JSON: {}.labels must hold strings", where);
      ep.labels.push_back(l.get<std::string>());
    }
  }
  return ep;
}

json parse_json_text(std::string_view text) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail("invalid JSON in flow stream: {}", e.what());
  }
}

}  // namespace

json flow_to_json(const Flow& f) {
  json j = json::object();
  j["time"] = format_rfc3339(f.time);
  j["verdict"] = std::string(to_string(f.verdict));
  if (f.drop_reason != 0) {
    j["drop_reason"] = f.drop_reason;
    j["drop_reason_desc"] = datapath::drop_reason_name(f.drop_reason);
  }
  if (f.source.ip.value != 0 || f.destination.ip.value != 0) {
    j["IP"] = {{"source", endpoint::to_string(f.source.ip)},
               {"destination", endpoint::to_string(f.destination.ip)},
               {"ipVersion", "IPv4"}};
  }
  switch (f.l4.protocol) {
    case L4Protocol::Tcp: {
      json flags = json::object();
      for (const auto& name : f.l4.tcp_flags.names()) flags[name] = true;
      j["l4"] = {{"TCP", {{"source_port", f.source.port}, {"destination_port", f.destination.port}, {"flags", flags}}}};
      break;
    }
    case L4Protocol::Udp:
      j["l4"] = {{"UDP", {{"source_port", f.source.port}, {"destination_port", f.destination.port}}}};
      break;
    case L4Protocol::Icmpv4: j["l4"] = {{"ICMPv4", {{"type", f.l4.icmp_type}, {"code", f.l4.icmp_code}}}}; break;
    case L4Protocol::None: break;
  }
  j["source"] = endpoint_to_json(f.source);
  j["destination"] = endpoint_to_json(f.destination);
  j["Type"] = f.http ? "L7" : "L3_L4";
  if (!f.node_name.empty()) j["node_name"] = f.node_name;
  if (f.http) {
    j["l7"] = {{"type", f.http->l7_type},
               {"latency_ns", f.http->latency_ns},
               {"http",
                {{"code", f.http->code}, {"method", f.http->method}, {"url", f.http->url}, {"protocol", f.http->protocol}}}};
  }
  if (f.is_reply) j["is_reply"] = *f.is_reply;
  j["event_type"] = {{"type", hubble_event_type(f.kind)}, {"sub_type", hubble_event_sub_type(f)}};
  if (f.kind == EventKind::Trace) {
    // Hubble's TraceObservationPoint name: "to-endpoint" -> "TO_ENDPOINT".
    std::string point(to_string(f.trace_point));
    for (char& c : point) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    j["trace_observation_point"] = point;
  }
  if (f.direction != TrafficDirection::Unknown) j["traffic_direction"] = std::string(to_string(f.direction));
  if (f.policy_match_type != 0) j["policy_match_type"] = f.policy_match_type;
  if (f.ifindex != 0) j["interface"] = {{"index", f.ifindex}};
  if (!f.policies.empty()) {
    json list = json::array();
    for (const FlowPolicy& p : f.policies) list.push_back(policy_to_json(p));
    j[policy_list_key(f)] = list;
  } else if (f.policy_name) {
    json policy = json::object();
    if (size_t slash = f.policy_name->find('/'); slash != std::string::npos) {
      policy["namespace"] = f.policy_name->substr(0, slash);
      policy["name"] = f.policy_name->substr(slash + 1);
    } else {
      policy["name"] = *f.policy_name;
    }
    j[policy_list_key(f)] = json::array({policy});
  }
  j["Summary"] = f.summary;
  return j;
}

Flow flow_from_json(const json& input) {
  if (!input.is_object()) fail("flow JSON: expected an object");
  const json& j = member(input, "flow") ? get_object(input, "flow", "response") : input;
  Flow f;
  std::string time = get_string(j, "time", "flow");
  if (time.empty()) time = get_string(input, "time", "response");
  if (!time.empty()) f.time = parse_rfc3339(time);
  f.node_name = get_string(j, "node_name", "flow");
  if (f.node_name.empty()) f.node_name = get_string(input, "node_name", "response");

  std::string verdict = get_string(j, "verdict", "flow");
  f.verdict = verdict.empty() || verdict == "VERDICT_UNKNOWN" ? Verdict::Unknown : parse_verdict(verdict);
  f.drop_reason = static_cast<uint8_t>(get_uint(j, "drop_reason", "flow", 255));
  if (f.drop_reason == 0) {
    std::string desc = get_string(j, "drop_reason_desc", "flow");
    if (!desc.empty()) {
      auto reason = drop_reason_from_name(desc);
      if (!reason) fail("flow JSON: unknown drop_reason_desc '{}'", desc);
      f.drop_reason = *reason;
    }
  }

  f.source = endpoint_from_json(get_object(j, "source", "flow"), "source");
  f.destination = endpoint_from_json(get_object(j, "destination", "flow"), "destination");
  const json& ip = get_object(j, "IP", "flow");
  f.source.ip = get_ip(ip, "source");
  f.destination.ip = get_ip(ip, "destination");

  const json& l4 = get_object(j, "l4", "flow");
  if (member(l4, "TCP")) {
    const json& tcp = get_object(l4, "TCP", "l4");
    f.l4.protocol = L4Protocol::Tcp;
    f.source.port = static_cast<uint16_t>(get_uint(tcp, "source_port", "l4.TCP", UINT16_MAX));
    f.destination.port = static_cast<uint16_t>(get_uint(tcp, "destination_port", "l4.TCP", UINT16_MAX));
    const json& flags = get_object(tcp, "flags", "l4.TCP");
    TcpFlags& t = f.l4.tcp_flags;
    t.syn = get_bool(flags, "SYN", "flags");
    t.ack = get_bool(flags, "ACK", "flags");
    t.fin = get_bool(flags, "FIN", "flags");
    t.rst = get_bool(flags, "RST", "flags");
    t.psh = get_bool(flags, "PSH", "flags");
    t.urg = get_bool(flags, "URG", "flags");
    t.ece = get_bool(flags, "ECE", "flags");
    t.cwr = get_bool(flags, "CWR", "flags");
  } else if (member(l4, "UDP")) {
    const json& udp = get_object(l4, "UDP", "l4");
    f.l4.protocol = L4Protocol::Udp;
    f.source.port = static_cast<uint16_t>(get_uint(udp, "source_port", "l4.UDP", UINT16_MAX));
    f.destination.port = static_cast<uint16_t>(get_uint(udp, "destination_port", "l4.UDP", UINT16_MAX));
  } else if (member(l4, "ICMPv4")) {
    const json& icmp = get_object(l4, "ICMPv4", "l4");
    f.l4.protocol = L4Protocol::Icmpv4;
    f.l4.icmp_type = static_cast<uint8_t>(get_uint(icmp, "type", "l4.ICMPv4", 255));
    f.l4.icmp_code = static_cast<uint8_t>(get_uint(icmp, "code", "l4.ICMPv4", 255));
  }

  if (member(j, "l7")) {
    const json& l7 = get_object(j, "l7", "flow");
    const json& http = get_object(l7, "http", "l7");
    HttpInfo h;
    std::string type = get_string(l7, "type", "l7");
    if (!type.empty()) h.l7_type = type;
    h.latency_ns = get_uint(l7, "latency_ns", "l7", UINT64_MAX);
    h.code = static_cast<uint32_t>(get_uint(http, "code", "l7.http", UINT32_MAX));
    h.method = get_string(http, "method", "l7.http");
    h.url = get_string(http, "url", "l7.http");
    h.protocol = get_string(http, "protocol", "l7.http");
    f.http = std::move(h);
  }
  if (member(j, "is_reply")) f.is_reply = get_bool(j, "is_reply", "flow");

  const json& event_type = get_object(j, "event_type", "flow");
  f.kind = event_kind_from_hubble(static_cast<int>(get_uint(event_type, "type", "event_type", 255)));
  if (f.kind == EventKind::Trace) {
    uint64_t sub = get_uint(event_type, "sub_type", "event_type", 255);
    if (sub > static_cast<uint64_t>(TracePoint::ToNetwork)) fail("flow JSON: unknown trace point {}", sub);
    f.trace_point = static_cast<TracePoint>(sub);
  }
  std::string direction = get_string(j, "traffic_direction", "flow");
  if (!direction.empty()) f.direction = parse_traffic_direction(direction);
  f.policy_match_type = static_cast<uint8_t>(get_uint(j, "policy_match_type", "flow", 255));
  f.ifindex = static_cast<uint32_t>(get_uint(get_object(j, "interface", "flow"), "index", "interface", UINT32_MAX));
  for (const char* key : {"ingress_allowed_by", "ingress_denied_by", "egress_allowed_by", "egress_denied_by"}) {
    const json* list = member(j, key);
    if (!list) continue;
    if (!list->is_array()) fail("flow JSON: {} must be an array", key);
    if (list->empty()) continue;
    // With kinds it is a list of causes (L3/L4 verdicts and drops); without, the L7 proxy's one policy.
    if (get_string(list->front(), "kind", key).empty()) {
      std::string ns = get_string(list->front(), "namespace", key);
      std::string name = get_string(list->front(), "name", key);
      f.policy_name = ns.empty() ? name : ns + "/" + name;
      break;
    }
    for (const json& item : *list) {
      FlowPolicy p;
      p.kind = get_string(item, "kind", key);
      p.namespace_name = get_string(item, "namespace", key);
      p.name = get_string(item, "name", key);
      p.rule = get_string(item, "rule", key);
      if (member(item, "rule_index")) p.rule_index = static_cast<int>(get_uint(item, "rule_index", key, INT32_MAX));
      f.policies.push_back(std::move(p));
    }
    break;
  }
  f.summary = get_string(j, "Summary", "flow");
  return f;
}

std::string_view to_string(LostEventSource s) {
  switch (s) {
    case LostEventSource::PerfEventRingBuffer: return "PERF_EVENT_RING_BUFFER";
    case LostEventSource::ObserverEventsQueue: return "OBSERVER_EVENTS_QUEUE";
    case LostEventSource::HubbleRingBuffer: return "HUBBLE_RING_BUFFER";
    default: return "UNKNOWN_LOST_EVENT_SOURCE";
  }
}

namespace {

// The stream's hot path writes the line directly, in the very form nlohmann's dump() gives
// (keys in its std::map order, no spaces), without building a json tree per flow. Only
// strings that need no escaping are written so; a flow holding any other string takes
// the json tree (which escapes, and rejects invalid UTF-8 as before).
class DirectWriter {
 public:
  explicit DirectWriter(std::string& out) : out_(out) {}
  bool ok() const { return ok_; }

  void raw(std::string_view text) { out_.append(text); }
  void key(std::string_view k) {
    comma();
    out_ += '"';
    out_.append(k);
    out_ += "\":";
    first_ = true;  // the value follows: no comma before it
  }
  void str(std::string_view v) {
    comma();
    for (char c : v) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') ok_ = false;
    }
    out_ += '"';
    out_.append(v);
    out_ += '"';
  }
  void num(uint64_t v) {
    comma();
    char buf[24];
    out_.append(buf, static_cast<size_t>(std::to_chars(buf, buf + sizeof buf, v).ptr - buf));
  }
  void boolean(bool v) {
    comma();
    out_ += v ? "true" : "false";
  }
  void open(char brace) {
    comma();
    out_ += brace;
    first_ = true;
  }
  void close(char brace) {
    out_ += brace;
    first_ = false;
  }

 private:
  void comma() {
    if (!first_) out_ += ',';
    first_ = false;
  }
  std::string& out_;
  bool first_ = true;
  bool ok_ = true;
};

void write_endpoint(DirectWriter& w, const FlowEndpoint& ep) {
  w.open('{');
  if (ep.endpoint_id != 0) w.key("ID"), w.num(ep.endpoint_id);
  w.key("identity"), w.num(ep.identity);
  if (!ep.labels.empty()) {
    w.key("labels"), w.open('[');
    for (const auto& l : ep.labels) w.str(l);
    w.close(']');
  }
  if (!ep.namespace_name.empty()) w.key("namespace"), w.str(ep.namespace_name);
  if (!ep.pod_name.empty()) w.key("pod_name"), w.str(ep.pod_name);
  w.close('}');
}

void write_policy(DirectWriter& w, const FlowPolicy& p) {
  w.open('{');
  if (!p.kind.empty()) {
    w.key("kind"), w.str(p.kind);
    w.key("labels"), w.open('[');
    w.str("k8s:io.cilium.k8s.policy.derived-from=" + p.kind);
    w.str("k8s:io.cilium.k8s.policy.name=" + p.name);
    if (!p.namespace_name.empty()) w.str("k8s:io.cilium.k8s.policy.namespace=" + p.namespace_name);
    w.close(']');
  }
  w.key("name"), w.str(p.name);
  if (!p.namespace_name.empty()) w.key("namespace"), w.str(p.namespace_name);
  if (!p.rule.empty()) w.key("rule"), w.str(p.rule);
  if (p.rule_index >= 0) w.key("rule_index"), w.num(static_cast<uint64_t>(p.rule_index));
  w.close('}');
}

// The flow object's members in key order (uppercase before lowercase, as std::map sorts).
bool write_flow(std::string& out, const Flow& f, const std::string& time) {
  DirectWriter w(out);
  w.open('{');
  if (f.source.ip.value != 0 || f.destination.ip.value != 0) {
    w.key("IP"), w.open('{');
    w.key("destination"), w.str(endpoint::to_string(f.destination.ip));
    w.key("ipVersion"), w.str("IPv4");
    w.key("source"), w.str(endpoint::to_string(f.source.ip));
    w.close('}');
  }
  w.key("Summary"), w.str(f.summary);
  w.key("Type"), w.str(f.http ? "L7" : "L3_L4");
  w.key("destination"), write_endpoint(w, f.destination);
  if (f.drop_reason != 0) {
    w.key("drop_reason"), w.num(f.drop_reason);
    w.key("drop_reason_desc"), w.str(datapath::drop_reason_name(f.drop_reason));
  }
  bool egress = f.direction == TrafficDirection::Egress;
  auto policies = [&] {
    w.key(policy_list_key(f)), w.open('[');
    if (!f.policies.empty()) {
      for (const FlowPolicy& p : f.policies) write_policy(w, p);
    } else {
      w.open('{');
      if (size_t slash = f.policy_name->find('/'); slash != std::string::npos) {
        w.key("name"), w.str(std::string_view(*f.policy_name).substr(slash + 1));
        w.key("namespace"), w.str(std::string_view(*f.policy_name).substr(0, slash));
      } else {
        w.key("name"), w.str(*f.policy_name);
      }
      w.close('}');
    }
    w.close(']');
  };
  bool has_policies = !f.policies.empty() || f.policy_name.has_value();
  if (has_policies && egress) policies();
  w.key("event_type"), w.open('{');
  int sub_type = hubble_event_sub_type(f), type = hubble_event_type(f.kind);
  if (sub_type < 0 || type < 0) return false;
  w.key("sub_type"), w.num(static_cast<uint64_t>(sub_type));
  w.key("type"), w.num(static_cast<uint64_t>(type));
  w.close('}');
  if (has_policies && !egress) policies();
  if (f.ifindex != 0) w.key("interface"), w.open('{'), w.key("index"), w.num(f.ifindex), w.close('}');
  if (f.is_reply) w.key("is_reply"), w.boolean(*f.is_reply);
  switch (f.l4.protocol) {
    case L4Protocol::Tcp: {
      w.key("l4"), w.open('{'), w.key("TCP"), w.open('{');
      w.key("destination_port"), w.num(f.destination.port);
      w.key("flags"), w.open('{');
      const TcpFlags& t = f.l4.tcp_flags;
      // The names' alphabetical order, as the json object keeps them.
      const std::pair<bool, const char*> flags[] = {{t.ack, "ACK"}, {t.cwr, "CWR"}, {t.ece, "ECE"}, {t.fin, "FIN"},
                                                    {t.psh, "PSH"}, {t.rst, "RST"}, {t.syn, "SYN"}, {t.urg, "URG"}};
      for (const auto& [set, name] : flags)
        if (set) w.key(name), w.boolean(true);
      w.close('}');
      w.key("source_port"), w.num(f.source.port);
      w.close('}'), w.close('}');
      break;
    }
    case L4Protocol::Udp:
      w.key("l4"), w.open('{'), w.key("UDP"), w.open('{');
      w.key("destination_port"), w.num(f.destination.port);
      w.key("source_port"), w.num(f.source.port);
      w.close('}'), w.close('}');
      break;
    case L4Protocol::Icmpv4:
      w.key("l4"), w.open('{'), w.key("ICMPv4"), w.open('{');
      w.key("code"), w.num(f.l4.icmp_code);
      w.key("type"), w.num(f.l4.icmp_type);
      w.close('}'), w.close('}');
      break;
    case L4Protocol::None: break;
  }
  if (f.http) {
    w.key("l7"), w.open('{');
    w.key("http"), w.open('{');
    w.key("code"), w.num(f.http->code);
    w.key("method"), w.str(f.http->method);
    w.key("protocol"), w.str(f.http->protocol);
    w.key("url"), w.str(f.http->url);
    w.close('}');
    w.key("latency_ns"), w.num(f.http->latency_ns);
    w.key("type"), w.str(f.http->l7_type);
    w.close('}');
  }
  if (!f.node_name.empty()) w.key("node_name"), w.str(f.node_name);
  if (f.policy_match_type != 0) w.key("policy_match_type"), w.num(f.policy_match_type);
  w.key("source"), write_endpoint(w, f.source);
  w.key("time"), w.str(time);
  if (f.kind == EventKind::Trace) {
    std::string point(to_string(f.trace_point));
    for (char& c : point) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    w.key("trace_observation_point"), w.str(point);
  }
  if (f.direction != TrafficDirection::Unknown) w.key("traffic_direction"), w.str(to_string(f.direction));
  w.key("verdict"), w.str(to_string(f.verdict));
  w.close('}');
  return w.ok();
}

}  // namespace

void append_flow_json_line(std::string& out, const Flow& flow) {
  size_t start = out.size();
  std::string time = format_rfc3339(flow.time);
  out += "{\"flow\":";
  bool ok = write_flow(out, flow, time);
  DirectWriter node(out), stamp(out);  // each writes one value after its own key
  node.raw(",\"node_name\":"), node.str(flow.node_name);
  stamp.raw(",\"time\":"), stamp.str(time);
  out += '}';
  if (ok && node.ok() && stamp.ok()) return;
  out.resize(start);
  json line = {{"flow", flow_to_json(flow)}, {"node_name", flow.node_name}, {"time", time}};
  out += line.dump();
}

std::string flow_json_line(const Flow& flow) {
  std::string out;
  append_flow_json_line(out, flow);
  return out;
}

std::string lost_events_json_line(const LostEvents& lost) {
  json line = {{"lost_events", {{"source", std::string(to_string(lost.source))}, {"num_events_lost", lost.count}}},
               {"node_name", lost.node_name},
               {"time", format_rfc3339(lost.time)}};
  return line.dump();
}

StreamItem parse_stream_line(std::string_view line) {
  json j = parse_json_text(line);
  if (!j.is_object()) fail("flow stream: expected a JSON object per line");
  if (const json* lost = member(j, "lost_events")) {
    LostEvents l;
    std::string source = get_string(*lost, "source", "lost_events");
    for (auto s : {LostEventSource::PerfEventRingBuffer, LostEventSource::ObserverEventsQueue,
                   LostEventSource::HubbleRingBuffer}) {
      if (source == to_string(s)) l.source = s;
    }
    l.count = get_uint(*lost, "num_events_lost", "lost_events", UINT64_MAX);
    l.node_name = get_string(j, "node_name", "response");
    std::string time = get_string(j, "time", "response");
    if (!time.empty()) l.time = parse_rfc3339(time);
    return l;
  }
  return flow_from_json(j);
}

}  // namespace pilus::observe
