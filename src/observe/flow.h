// A flow: one datapath (or proxy) event with its endpoints resolved to pods, in Hubble's vocabulary.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "endpoint/ipv4.h"

namespace pilus::observe {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;  // nanosecond resolution on Linux (libstdc++)

// Hubble's Verdict enum, same numbers, so JSON and filters speak the same names.
enum class Verdict : uint8_t {
  Unknown = 0,
  Forwarded = 1,
  Dropped = 2,
  Error = 3,
  Audit = 4,
  Redirected = 5,
  Traced = 6,
  Translated = 7,
};

enum class TrafficDirection : uint8_t { Unknown = 0, Ingress = 1, Egress = 2 };

// What produced the flow. Hubble keys this on event_type.type (see hubble_event_type()).
enum class EventKind : uint8_t { Unknown = 0, Drop, Trace, PolicyVerdict, L7 };

// Hubble's trace observation points (its numbers), named in compact output ("to-endpoint").
enum class TracePoint : uint8_t {
  ToEndpoint = 0,
  ToProxy = 1,
  ToHost = 2,
  ToStack = 3,
  ToOverlay = 4,
  FromEndpoint = 5,
  FromProxy = 6,
  FromHost = 7,
  FromStack = 8,
  FromOverlay = 9,
  FromNetwork = 10,
  ToNetwork = 11,
};

enum class L4Protocol : uint8_t { None = 0, Tcp, Udp, Icmpv4 };

// TCP header flag bits as the datapath copies them (byte 13 of the TCP header).
struct TcpFlags {
  bool fin = false, syn = false, rst = false, psh = false, ack = false, urg = false, ece = false,
       cwr = false;

  static TcpFlags from_bits(uint8_t bits);
  uint8_t bits() const;
  // Names of the set flags, handshake first: "SYN", "ACK", "PSH", "FIN", "RST", ...
  std::vector<std::string> names() const;
  // Every flag set in `required` is set here (Hubble's --tcp-flags semantics).
  bool contains(const TcpFlags& required) const { return (bits() & required.bits()) == required.bits(); }
  bool operator==(const TcpFlags&) const = default;
};

struct L4 {
  L4Protocol protocol = L4Protocol::None;
  TcpFlags tcp_flags;      // Tcp only
  uint8_t icmp_type = 0;   // Icmpv4 only
  uint8_t icmp_code = 0;   // Icmpv4 only
  bool operator==(const L4&) const = default;
};

// One side of a flow. A pod has a namespace and pod name; anything else only an address and an
// identity (reserved ones carry a "reserved:<name>" label).
struct FlowEndpoint {
  endpoint::Ipv4 ip;
  uint16_t port = 0;  // TCP/UDP only; 0 otherwise
  std::string namespace_name;
  std::string pod_name;
  std::vector<std::string> labels;  // "k8s:app=frontend", "reserved:world", ...
  uint32_t identity = 0;
  uint16_t endpoint_id = 0;  // pilus endpoint id (Hubble's "ID"); 0 when not a local pod
  bool operator==(const FlowEndpoint&) const = default;
};

// L7 HTTP details, filled by the proxy (not by the BPF datapath).
struct HttpInfo {
  std::string l7_type = "REQUEST";  // Hubble's L7FlowType: REQUEST, RESPONSE, SAMPLE
  std::string method;
  std::string url;
  std::string protocol;  // "HTTP/1.1"
  uint32_t code = 0;     // response status; 0 on requests
  uint64_t latency_ns = 0;
  bool operator==(const HttpInfo&) const = default;
};

// A policy a flow names as its cause, as Hubble's Policy (kind, namespace, name), plus which
// rule when one rule decided (pilus: deny and allow rules; -1 for a default deny).
struct FlowPolicy {
  std::string kind;
  std::string namespace_name;  // empty for clusterwide policies
  std::string name;
  int rule_index = -1;
  std::string rule;  // where the rule is written: "spec.egressDeny[0].toPorts[0]"
  bool operator==(const FlowPolicy&) const = default;
};

// "NetworkPolicy default/allow-http", "CiliumNetworkPolicy default/deny-db spec.egressDeny[0]".
std::string to_string(const FlowPolicy& p);

struct Flow {
  TimePoint time{};
  std::string node_name;
  FlowEndpoint source;
  FlowEndpoint destination;
  L4 l4;
  TrafficDirection direction = TrafficDirection::Unknown;
  Verdict verdict = Verdict::Unknown;
  uint8_t drop_reason = 0;  // bpf/abi/drop_reasons.h; 0 when not dropped
  EventKind kind = EventKind::Unknown;
  TracePoint trace_point = TracePoint::ToEndpoint;  // Trace only
  // Unknown for drops: the datapath may drop before conntrack says which way the packet goes.
  std::optional<bool> is_reply;
  uint32_t ifindex = 0;
  std::optional<std::string> policy_name;  // "namespace/name" of the policy that decided, when known
  // L3/L4 policy verdicts and drops: the rule that allowed or denied (POLICY_DENY: the deny
  // rule), or for POLICY_DENIED the policies that made the direction default deny. Written
  // to JSON as ingress_/egress_ allowed_by/denied_by (taking precedence over policy_name).
  std::vector<FlowPolicy> policies;
  uint8_t policy_match_type = 0;           // Hubble's PolicyMatchType; 0 = none
  std::optional<HttpInfo> http;
  std::string summary;  // Hubble's Summary: "TCP Flags: SYN", "UDP", "ICMPv4 EchoRequest"
  bool operator==(const Flow&) const = default;
};

// ---- names, both ways (parse_* throw pilus::Error naming the value) ----

std::string_view to_string(Verdict v);  // "FORWARDED"; "VERDICT_UNKNOWN"
Verdict parse_verdict(std::string_view text);  // case-insensitive
std::string_view to_string(TrafficDirection d);  // "INGRESS"; "TRAFFIC_DIRECTION_UNKNOWN"
TrafficDirection parse_traffic_direction(std::string_view text);
std::string_view to_string(EventKind k);  // "drop", "trace", "policy-verdict", "l7"
std::string_view to_string(TracePoint p);  // "to-endpoint"
std::optional<TracePoint> parse_trace_point(std::string_view text);

// Hubble's event_type.type numbers: drop 1, trace 4, policy-verdict 5, l7 (access log) 129.
int hubble_event_type(EventKind k);
EventKind event_kind_from_hubble(int type);
// event_type.sub_type: the observation point for traces, the drop reason for drops.
int hubble_event_sub_type(const Flow& f);

// Cilium's human text for a drop reason, as Hubble's compact output prints it ("Policy denied");
// pilus's own reasons get their own text ("No route to the outside"); unknown numbers print as digits.
std::string drop_reason_text(uint8_t reason);
// The reason number for a drop_reason_desc name ("POLICY_DENIED"), or nullopt.
std::optional<uint8_t> drop_reason_from_name(std::string_view name);

// Reserved identities (Cilium's numbers 1..8): "host", "world", ...; nullopt for others.
std::optional<std::string_view> reserved_identity_name(uint32_t identity);
std::optional<uint32_t> reserved_identity_from_name(std::string_view name);

// ICMPv4 type/code as Hubble summarises them: "EchoRequest", "DestinationUnreachable(Port)".
std::string icmpv4_type_code_name(uint8_t type, uint8_t code);

// The L3/L4 summary Hubble gives a flow: "TCP Flags: SYN, ACK", "UDP", "ICMPv4 EchoReply".
std::string l4_summary(const L4& l4);

}  // namespace pilus::observe
