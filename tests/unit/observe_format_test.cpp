// Flow output: Hubble-like compact lines, flow JSON (fields and round trip), tables, and time text.
#include "observe/flow_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "observe/flow_json.h"
#include "observe/flow_time.h"
#include "unit/error_of.h"

namespace pilus::observe {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

using pilus::testing::error_of;

const TimePoint kTime = parse_rfc3339("2024-11-24T10:01:02.123456789Z");

FlowEndpoint frontend(uint16_t port) {
  FlowEndpoint ep;
  ep.ip = endpoint::parse_ipv4("10.244.0.5");
  ep.port = port;
  ep.namespace_name = "default";
  ep.pod_name = "frontend";
  ep.identity = 1234;
  ep.endpoint_id = 7;
  ep.labels = {"k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=default"};
  return ep;
}

FlowEndpoint backend(uint16_t port) {
  FlowEndpoint ep;
  ep.ip = endpoint::parse_ipv4("10.244.0.6");
  ep.port = port;
  ep.namespace_name = "default";
  ep.pod_name = "backend";
  ep.identity = 5678;
  ep.labels = {"k8s:app=backend", "k8s:io.kubernetes.pod.namespace=default"};
  return ep;
}

Flow base(FlowEndpoint src, FlowEndpoint dst) {
  Flow f;
  f.time = kTime;
  f.node_name = "node-1";
  f.source = std::move(src);
  f.destination = std::move(dst);
  f.ifindex = 42;
  return f;
}

Flow forwarded_syn() {
  Flow f = base(frontend(41234), backend(80));
  f.kind = EventKind::Trace;
  f.trace_point = TracePoint::ToEndpoint;
  f.verdict = Verdict::Forwarded;
  f.direction = TrafficDirection::Egress;
  f.is_reply = false;
  f.l4.protocol = L4Protocol::Tcp;
  f.l4.tcp_flags.syn = true;
  f.summary = l4_summary(f.l4);
  return f;
}

Flow dropped_udp() {
  Flow f = base(frontend(5353), backend(53));
  f.kind = EventKind::Drop;
  f.verdict = Verdict::Dropped;
  f.drop_reason = 133;
  f.direction = TrafficDirection::Ingress;
  f.l4.protocol = L4Protocol::Udp;
  f.summary = l4_summary(f.l4);
  return f;
}

Flow dropped_to_world() {
  FlowEndpoint world;
  world.ip = endpoint::parse_ipv4("1.1.1.1");
  world.port = 53;
  world.identity = 2;
  world.labels = {"reserved:world"};
  Flow f = base(frontend(5353), world);
  f.kind = EventKind::Drop;
  f.verdict = Verdict::Dropped;
  f.drop_reason = 240;
  f.direction = TrafficDirection::Egress;
  f.l4.protocol = L4Protocol::Udp;
  f.summary = l4_summary(f.l4);
  return f;
}

Flow icmp_echo() {
  Flow f = base(frontend(0), backend(0));
  f.kind = EventKind::Trace;
  f.verdict = Verdict::Forwarded;
  f.direction = TrafficDirection::Egress;
  f.is_reply = false;
  f.l4.protocol = L4Protocol::Icmpv4;
  f.l4.icmp_type = 8;
  f.summary = l4_summary(f.l4);
  return f;
}

Flow policy_denied() {
  Flow f = forwarded_syn();
  f.kind = EventKind::PolicyVerdict;
  f.verdict = Verdict::Dropped;
  f.drop_reason = 133;
  f.direction = TrafficDirection::Ingress;
  f.policy_name = "default/deny-all";
  return f;
}

Flow http_response() {
  Flow f = forwarded_syn();
  f.kind = EventKind::L7;
  f.is_reply = true;
  f.direction = TrafficDirection::Ingress;
  f.http = HttpInfo{"RESPONSE", "GET", "http://backend/api", "HTTP/1.1", 200, 1234567};
  f.policy_name = "allow-frontend";
  f.summary = "HTTP/1.1 200 1ms (GET http://backend/api)";
  return f;
}

FormatOptions utc() { return FormatOptions{}; }

// ---- compact ----

TEST(ObserveCompact, ForwardedTcpSyn) {
  EXPECT_EQ(format_compact(forwarded_syn(), utc()),
            "Nov 24 10:01:02.123: default/frontend:41234 (ID:1234) -> default/backend:80 (ID:5678) "
            "to-endpoint FORWARDED (TCP Flags: SYN)");
}

TEST(ObserveCompact, DroppedUdpWithReason) {
  EXPECT_EQ(format_compact(dropped_udp(), utc()),
            "Nov 24 10:01:02.123: default/frontend:5353 (ID:1234) <> default/backend:53 (ID:5678) "
            "Policy denied DROPPED (UDP)");
  EXPECT_EQ(format_compact(dropped_to_world(), utc()),
            "Nov 24 10:01:02.123: default/frontend:5353 (ID:1234) <> 1.1.1.1:53 (world) "
            "No route to the outside DROPPED (UDP)");
}

// A policy drop names its cause, which Hubble cannot for a default deny.
TEST(ObserveCompact, PolicyDropsNameTheirCause) {
  Flow f = dropped_udp();
  f.policies = {{"NetworkPolicy", "default", "allow-http", -1, ""}, {"CiliumNetworkPolicy", "default", "lock", -1, ""}};
  EXPECT_EQ(format_compact(f, utc()),
            "Nov 24 10:01:02.123: default/frontend:5353 (ID:1234) <> default/backend:53 (ID:5678) "
            "Policy denied by default (NetworkPolicy default/allow-http, CiliumNetworkPolicy default/lock) DROPPED (UDP)");
  f.drop_reason = 181;
  f.policies = {{"CiliumClusterwideNetworkPolicy", "", "guard", 0, "spec.ingressDeny[0]"}};
  EXPECT_EQ(format_compact(f, utc()),
            "Nov 24 10:01:02.123: default/frontend:5353 (ID:1234) <> default/backend:53 (ID:5678) "
            "Policy denied by denylist (CiliumClusterwideNetworkPolicy guard spec.ingressDeny[0]) DROPPED (UDP)");
  json j = flow_to_json(f);
  EXPECT_EQ(j["ingress_denied_by"],
            (json::array({{{"name", "guard"},
                           {"kind", "CiliumClusterwideNetworkPolicy"},
                           {"labels", {"k8s:io.cilium.k8s.policy.derived-from=CiliumClusterwideNetworkPolicy",
                                       "k8s:io.cilium.k8s.policy.name=guard"}},
                           {"rule_index", 0},
                           {"rule", "spec.ingressDeny[0]"}}})));
  EXPECT_EQ(flow_from_json(j), f) << "reads back whole, so the CLI renders the same line";
}

TEST(ObserveCompact, IcmpEcho) {
  EXPECT_EQ(format_compact(icmp_echo(), utc()),
            "Nov 24 10:01:02.123: default/frontend (ID:1234) -> default/backend (ID:5678) "
            "to-endpoint FORWARDED (ICMPv4 EchoRequest)");
}

TEST(ObserveCompact, RepliesReadFromTheInitiator) {
  Flow f = base(backend(80), frontend(41234));
  f.kind = EventKind::Trace;
  f.verdict = Verdict::Forwarded;
  f.is_reply = true;
  f.l4.protocol = L4Protocol::Tcp;
  f.l4.tcp_flags.syn = f.l4.tcp_flags.ack = true;
  f.summary = l4_summary(f.l4);
  EXPECT_EQ(format_compact(f, utc()),
            "Nov 24 10:01:02.123: default/frontend:41234 (ID:1234) <- default/backend:80 (ID:5678) "
            "to-endpoint FORWARDED (TCP Flags: SYN, ACK)");
}

TEST(ObserveCompact, PolicyVerdictsL7AndNodes) {
  EXPECT_EQ(format_compact(policy_denied(), utc()),
            "Nov 24 10:01:02.123: default/frontend:41234 (ID:1234) -> default/backend:80 (ID:5678) "
            "policy-verdict:none INGRESS DENIED (TCP Flags: SYN)");
  Flow allowed = policy_denied();
  allowed.verdict = Verdict::Forwarded;
  allowed.policy_match_type = 2;
  EXPECT_THAT(format_compact(allowed, utc()), HasSubstr(" policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN)"));
  EXPECT_THAT(format_compact(http_response(), utc()),
              HasSubstr(" <- default/frontend:41234 (ID:1234) http-response FORWARDED (HTTP/1.1 200 1ms"));
  EXPECT_EQ(format_compact(forwarded_syn(), FormatOptions{.node_name = true}).substr(0, 29),
            "Nov 24 10:01:02.123 [node-1]:");
  Flow early = forwarded_syn();
  early.time = parse_rfc3339("2024-11-04T09:08:07Z");
  EXPECT_EQ(format_compact(early, utc()).substr(0, 21), "Nov  4 09:08:07.000: ");
}

TEST(ObserveCompact, HostAndLostEvents) {
  Flow f = forwarded_syn();
  f.source = FlowEndpoint{};
  f.source.ip = endpoint::parse_ipv4("192.168.1.1");
  f.source.port = 40000;
  f.source.identity = 1;
  f.trace_point = TracePoint::ToHost;
  EXPECT_THAT(format_compact(f, utc()), HasSubstr(": 192.168.1.1:40000 (host) -> default/backend:80 (ID:5678) to-host "));
  LostEvents lost{LostEventSource::PerfEventRingBuffer, 5, kTime, "node-1"};
  EXPECT_EQ(format_compact(lost, utc()), "Nov 24 10:01:02.123: EVENTS LOST: PERF_EVENT_RING_BUFFER 5");
}

TEST(ObserveCompact, Texts) {
  EXPECT_EQ(drop_reason_text(133), "Policy denied");
  EXPECT_EQ(drop_reason_text(181), "Policy denied by denylist");
  EXPECT_EQ(drop_reason_text(240), "No route to the outside");
  EXPECT_EQ(drop_reason_text(99), "99");
  EXPECT_EQ(icmpv4_type_code_name(3, 3), "DestinationUnreachable(Port)");
  EXPECT_EQ(icmpv4_type_code_name(0, 0), "EchoReply");
  EXPECT_EQ(icmpv4_type_code_name(42, 1), "Type(42) Code(1)");
  EXPECT_EQ(identity_text(2), "(world)");
  EXPECT_EQ(identity_text(0), "(ID:0)");
  EXPECT_EQ(parse_output_format("json"), OutputFormat::Json);
  EXPECT_EQ(parse_output_format("table"), OutputFormat::Table);
  EXPECT_THAT(error_of([] { parse_output_format("yaml"); }), HasSubstr("yaml"));
}

// ---- JSON ----

TEST(ObserveJson, ForwardedTcpSynFields) {
  json line = json::parse(flow_json_line(forwarded_syn()));
  EXPECT_EQ(line["node_name"], "node-1");
  EXPECT_EQ(line["time"], "2024-11-24T10:01:02.123456789Z");
  const json& f = line["flow"];
  EXPECT_EQ(f["time"], "2024-11-24T10:01:02.123456789Z");
  EXPECT_EQ(f["verdict"], "FORWARDED");
  EXPECT_FALSE(f.contains("drop_reason_desc"));
  EXPECT_EQ(f["IP"], (json{{"source", "10.244.0.5"}, {"destination", "10.244.0.6"}, {"ipVersion", "IPv4"}}));
  EXPECT_EQ(f["l4"], (json{{"TCP", {{"source_port", 41234}, {"destination_port", 80}, {"flags", {{"SYN", true}}}}}}));
  EXPECT_EQ(f["source"], (json{{"ID", 7},
                               {"identity", 1234},
                               {"namespace", "default"},
                               {"pod_name", "frontend"},
                               {"labels", {"k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=default"}}}));
  EXPECT_EQ(f["destination"]["pod_name"], "backend");
  EXPECT_FALSE(f["destination"].contains("ID"));
  EXPECT_EQ(f["Type"], "L3_L4");
  EXPECT_EQ(f["node_name"], "node-1");
  EXPECT_EQ(f["is_reply"], false);
  EXPECT_EQ(f["traffic_direction"], "EGRESS");
  EXPECT_EQ(f["event_type"], (json{{"type", 4}, {"sub_type", 0}}));
  EXPECT_EQ(f["interface"], (json{{"index", 42}}));
  EXPECT_EQ(f["Summary"], "TCP Flags: SYN");
}

TEST(ObserveJson, DroppedUdpAndIcmpFields) {
  json d = flow_to_json(dropped_udp());
  EXPECT_EQ(d["verdict"], "DROPPED");
  EXPECT_EQ(d["drop_reason"], 133);
  EXPECT_EQ(d["drop_reason_desc"], "POLICY_DENIED");
  EXPECT_EQ(d["event_type"], (json{{"type", 1}, {"sub_type", 133}}));
  EXPECT_EQ(d["l4"], (json{{"UDP", {{"source_port", 5353}, {"destination_port", 53}}}}));
  EXPECT_FALSE(d.contains("is_reply")) << "unknown for drops";
  EXPECT_EQ(d["traffic_direction"], "INGRESS");

  json w = flow_to_json(dropped_to_world());
  EXPECT_EQ(w["drop_reason_desc"], "NO_ROUTE_TO_OUTSIDE");
  EXPECT_EQ(w["destination"], (json{{"identity", 2}, {"labels", {"reserved:world"}}}));

  json i = flow_to_json(icmp_echo());
  EXPECT_EQ(i["l4"], (json{{"ICMPv4", {{"type", 8}, {"code", 0}}}}));
  EXPECT_EQ(i["Summary"], "ICMPv4 EchoRequest");
}

TEST(ObserveJson, PolicyAndL7Fields) {
  json p = flow_to_json(policy_denied());
  EXPECT_EQ(p["event_type"]["type"], 5);
  EXPECT_EQ(p["ingress_denied_by"], (json::array({{{"name", "deny-all"}, {"namespace", "default"}}})));
  json h = flow_to_json(http_response());
  EXPECT_EQ(h["Type"], "L7");
  EXPECT_EQ(h["l7"]["type"], "RESPONSE");
  EXPECT_EQ(h["l7"]["latency_ns"], 1234567);
  EXPECT_EQ(h["l7"]["http"], (json{{"code", 200}, {"method", "GET"}, {"url", "http://backend/api"}, {"protocol", "HTTP/1.1"}}));
  EXPECT_EQ(h["ingress_allowed_by"], (json::array({{{"name", "allow-frontend"}}})));
}

TEST(ObserveJson, RoundTrip) {
  Flow unknown_verdict = base(FlowEndpoint{}, FlowEndpoint{});
  unknown_verdict.time = TimePoint{};
  Flow egress_policy = policy_denied();
  egress_policy.direction = TrafficDirection::Egress;
  egress_policy.verdict = Verdict::Forwarded;
  egress_policy.drop_reason = 0;
  Flow all_flags = forwarded_syn();
  all_flags.l4.tcp_flags = TcpFlags::from_bits(0xff);
  all_flags.time = parse_rfc3339("2024-11-24T10:01:02.5Z");
  Flow from_host = forwarded_syn();
  from_host.trace_point = TracePoint::FromHost;
  for (const Flow& f : {forwarded_syn(), dropped_udp(), dropped_to_world(), icmp_echo(), policy_denied(),
                        http_response(), unknown_verdict, egress_policy, all_flags, from_host}) {
    std::string line = flow_json_line(f);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    StreamItem item = parse_stream_line(line);
    ASSERT_TRUE(std::holds_alternative<Flow>(item)) << line;
    EXPECT_EQ(std::get<Flow>(item), f) << line;
    // The bare flow object reads back the same.
    EXPECT_EQ(flow_from_json(flow_to_json(f)), f);
    // And the CLI re-renders the same compact line from it.
    EXPECT_EQ(format_compact(std::get<Flow>(item), utc()), format_compact(f, utc()));
  }
  LostEvents lost{LostEventSource::HubbleRingBuffer, 17, kTime, "node-1"};
  std::string lost_line = lost_events_json_line(lost);
  EXPECT_EQ(json::parse(lost_line)["lost_events"],
            (json{{"source", "HUBBLE_RING_BUFFER"}, {"num_events_lost", 17}}));
  StreamItem item = parse_stream_line(lost_line);
  ASSERT_TRUE(std::holds_alternative<LostEvents>(item));
  EXPECT_EQ(std::get<LostEvents>(item), lost);
}

// The stream writes its lines without a json tree; they must be byte for byte what the tree
// dumps, including flows whose strings need escaping (those take the tree).
TEST(ObserveJson, StreamLineIsTheJsonTreesDump) {
  Flow ruled = policy_denied();
  ruled.policies = {FlowPolicy{"CiliumNetworkPolicy", "default", "deny-db", 0, "spec.ingressDeny[0]"},
                    FlowPolicy{"CiliumClusterwideNetworkPolicy", "", "lockdown", -1, ""}};
  Flow egress_ruled = ruled;
  egress_ruled.direction = TrafficDirection::Egress;
  egress_ruled.verdict = Verdict::Forwarded;
  Flow all_flags = forwarded_syn();
  all_flags.l4.tcp_flags = TcpFlags::from_bits(0xff);
  Flow reply = forwarded_syn();
  reply.is_reply = true;
  reply.ifindex = 0;
  reply.node_name = "";
  Flow quoted = http_response();
  quoted.http->url = "http://backend/a\"b\\c\td\u00e9";
  Flow odd_label = dropped_udp();
  odd_label.source.labels.push_back("k8s:note=caf\xc3\xa9");
  Flow unnamespaced = policy_denied();
  unnamespaced.policy_name = "cluster-policy";
  for (const Flow& f : {forwarded_syn(), dropped_udp(), dropped_to_world(), icmp_echo(), policy_denied(),
                        http_response(), base(FlowEndpoint{}, FlowEndpoint{}), ruled, egress_ruled, all_flags, reply,
                        quoted, odd_label, unnamespaced}) {
    json tree = {{"flow", flow_to_json(f)}, {"node_name", f.node_name}, {"time", format_rfc3339(f.time)}};
    EXPECT_EQ(flow_json_line(f), tree.dump());
    std::string appended = "x";
    append_flow_json_line(appended, f);
    EXPECT_EQ(appended, "x" + tree.dump());
  }
}

TEST(ObserveJson, ReadsHubbleStyleVariants) {
  // protobuf JSON writes 64-bit numbers as strings and leaves zero values out.
  Flow f = flow_from_json(json::parse(R"({"flow": {"verdict": "DROPPED", "drop_reason_desc": "POLICY_DENY",
      "l7": {"latency_ns": "42", "http": {"code": 403}}, "event_type": {"type": 1}},
      "node_name": "n2", "time": "2024-11-24T11:01:02+01:00"})"));
  EXPECT_EQ(f.drop_reason, 181);
  EXPECT_EQ(f.kind, EventKind::Drop);
  ASSERT_TRUE(f.http);
  EXPECT_EQ(f.http->latency_ns, 42u);
  EXPECT_EQ(f.node_name, "n2");
  EXPECT_EQ(f.time, parse_rfc3339("2024-11-24T10:01:02Z"));
}

TEST(ObserveJson, MalformedInputIsAnError) {
  EXPECT_THAT(error_of([] { parse_stream_line("not json"); }), HasSubstr("invalid JSON"));
  EXPECT_THAT(error_of([] { parse_stream_line("[1]"); }), HasSubstr("object"));
  EXPECT_THAT(error_of([] { parse_stream_line(R"({"flow": {"verdict": 5}})"); }), HasSubstr("verdict"));
  EXPECT_THAT(error_of([] { parse_stream_line(R"({"flow": {"verdict": "MAYBE"}})"); }), HasSubstr("MAYBE"));
  EXPECT_THAT(error_of([] { parse_stream_line(R"({"flow": {"IP": {"source": "1.2.3"}}})"); }), HasSubstr("IP.source"));
  EXPECT_THAT(error_of([] { parse_stream_line(R"({"flow": {"l4": {"TCP": {"source_port": 70000}}}})"); }),
              HasSubstr("source_port"));
  EXPECT_THAT(error_of([] { parse_stream_line(R"({"flow": {"time": "yesterday"}})"); }), HasSubstr("yesterday"));
  EXPECT_THAT(error_of([] { parse_stream_line(R"({"flow": {"source": {"labels": "x"}}})"); }), HasSubstr("labels"));
  EXPECT_THAT(error_of([] { parse_stream_line(R"({"flow": {"drop_reason_desc": "NOPE"}})"); }), HasSubstr("NOPE"));
}

// ---- table ----

TEST(ObserveTable, AlignedColumns) {
  std::string table = format_table({forwarded_syn(), dropped_to_world()}, utc());
  EXPECT_EQ(table,
            "TIMESTAMP             SOURCE                   DESTINATION          TYPE                      VERDICT     SUMMARY\n"
            "Nov 24 10:01:02.123   default/frontend:41234   default/backend:80   to-endpoint               FORWARDED   TCP Flags: SYN\n"
            "Nov 24 10:01:02.123   default/frontend:5353    1.1.1.1:53           No route to the outside   DROPPED     UDP\n");
  EXPECT_EQ(format_table({}, FormatOptions{.node_name = true}),
            "TIMESTAMP   NODE   SOURCE   DESTINATION   TYPE   VERDICT   SUMMARY\n");
}

// ---- time ----

TEST(ObserveTime, Rfc3339) {
  using std::chrono::nanoseconds;
  auto at = [](int64_t ns) { return TimePoint(std::chrono::duration_cast<Clock::duration>(nanoseconds(ns))); };
  EXPECT_EQ(format_rfc3339(at(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(at(1'500'000'000)), "1970-01-01T00:00:01.500Z");
  EXPECT_EQ(format_rfc3339(at(1'000'001'000)), "1970-01-01T00:00:01.000001Z");
  EXPECT_EQ(format_rfc3339(at(1'000'000'001)), "1970-01-01T00:00:01.000000001Z");
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01.5Z"), at(1'500'000'000));
  EXPECT_EQ(parse_rfc3339("1970-01-01T01:00:01-00:00"), at(3'601'000'000'000));
  EXPECT_EQ(parse_rfc3339("1970-01-01T01:00:00+01:00"), at(0));
  for (const char* bad : {"", "2024-11-24", "2024-11-24T10:01:02", "2024-13-01T00:00:00Z", "2024-11-24T10:01:02.Z",
                          "2024-11-24T10:01:02Zjunk", "2024-11-24T10:01:02+0100"}) {
    EXPECT_THAT(error_of([&] { parse_rfc3339(bad); }), HasSubstr("invalid time")) << bad;
  }
}

TEST(ObserveTime, DurationsAndTimeArgs) {
  using namespace std::chrono;
  EXPECT_EQ(parse_duration("90s"), seconds(90));
  EXPECT_EQ(parse_duration("1h30m"), minutes(90));
  EXPECT_EQ(parse_duration("1.5h"), minutes(90));
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("10us"), microseconds(10));
  for (const char* bad : {"", "5", "5d", "m", "1h-5m", "."}) {
    EXPECT_THAT(error_of([&] { parse_duration(bad); }), HasSubstr("invalid duration")) << bad;
  }
  TimePoint now = parse_rfc3339("2024-11-24T10:00:00Z");
  EXPECT_EQ(parse_time_arg("5m", now), parse_rfc3339("2024-11-24T09:55:00Z"));
  EXPECT_EQ(parse_time_arg("2024-11-23", now), parse_rfc3339("2024-11-23T00:00:00Z"));
  EXPECT_EQ(parse_time_arg("2024-11-23T08:00:00", now), parse_rfc3339("2024-11-23T08:00:00Z"));
  EXPECT_EQ(parse_time_arg("2024-11-23T08:00:00.25+02:00", now), parse_rfc3339("2024-11-23T06:00:00.25Z"));
  EXPECT_THROW(parse_time_arg("", now), pilus::Error);
}

}  // namespace
}  // namespace pilus::observe
