// Names and summaries of flow fields, in the words Hubble users already read.
#include "observe/flow.h"

#include <array>
#include <cctype>

#include "abi/drop_reasons.h"
#include "abi/identity.h"
#include "common/error.h"
#include "datapath/drop_reason_names.h"

namespace pilus::observe {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

constexpr std::array<std::pair<Verdict, std::string_view>, 8> kVerdictNames{{
    {Verdict::Unknown, "VERDICT_UNKNOWN"},
    {Verdict::Forwarded, "FORWARDED"},
    {Verdict::Dropped, "DROPPED"},
    {Verdict::Error, "ERROR"},
    {Verdict::Audit, "AUDIT"},
    {Verdict::Redirected, "REDIRECTED"},
    {Verdict::Traced, "TRACED"},
    {Verdict::Translated, "TRANSLATED"},
}};

constexpr std::array<std::string_view, 12> kTracePointNames{
    "to-endpoint", "to-proxy",      "to-host",    "to-stack",     "to-overlay",   "from-endpoint",
    "from-proxy",  "from-host",     "from-stack", "from-overlay", "from-network", "to-network",
};

constexpr std::array<std::pair<uint32_t, std::string_view>, 8> kReservedIdentities{{
    {IDENTITY_HOST, "host"},
    {IDENTITY_WORLD, "world"},
    {IDENTITY_UNMANAGED, "unmanaged"},
    {IDENTITY_HEALTH, "health"},
    {IDENTITY_INIT, "init"},
    {IDENTITY_REMOTE_NODE, "remote-node"},
    {IDENTITY_KUBE_APISERVER, "kube-apiserver"},
    {IDENTITY_INGRESS, "ingress"},
}};

}  // namespace

TcpFlags TcpFlags::from_bits(uint8_t bits) {
  TcpFlags f;
  f.fin = bits & 0x01;
  f.syn = bits & 0x02;
  f.rst = bits & 0x04;
  f.psh = bits & 0x08;
  f.ack = bits & 0x10;
  f.urg = bits & 0x20;
  f.ece = bits & 0x40;
  f.cwr = bits & 0x80;
  return f;
}

uint8_t TcpFlags::bits() const {
  return static_cast<uint8_t>((fin ? 0x01 : 0) | (syn ? 0x02 : 0) | (rst ? 0x04 : 0) | (psh ? 0x08 : 0) |
                              (ack ? 0x10 : 0) | (urg ? 0x20 : 0) | (ece ? 0x40 : 0) | (cwr ? 0x80 : 0));
}

std::vector<std::string> TcpFlags::names() const {
  // Handshake flags first, so the common cases read "SYN, ACK" and "ACK, PSH" / "ACK, FIN".
  std::vector<std::string> out;
  if (syn) out.emplace_back("SYN");
  if (ack) out.emplace_back("ACK");
  if (psh) out.emplace_back("PSH");
  if (fin) out.emplace_back("FIN");
  if (rst) out.emplace_back("RST");
  if (urg) out.emplace_back("URG");
  if (ece) out.emplace_back("ECE");
  if (cwr) out.emplace_back("CWR");
  return out;
}

std::string_view to_string(Verdict v) {
  for (const auto& [verdict, name] : kVerdictNames) {
    if (verdict == v) return name;
  }
  return "VERDICT_UNKNOWN";
}

Verdict parse_verdict(std::string_view text) {
  for (const auto& [verdict, name] : kVerdictNames) {
    if (verdict != Verdict::Unknown && iequals(text, name)) return verdict;
  }
  fail("unknown verdict '{}' (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED or TRANSLATED)",
       text);
}

std::string_view to_string(TrafficDirection d) {
  switch (d) {
    case TrafficDirection::Ingress: return "INGRESS";
    case TrafficDirection::Egress: return "EGRESS";
    default: return "TRAFFIC_DIRECTION_UNKNOWN";
  }
}

TrafficDirection parse_traffic_direction(std::string_view text) {
  if (iequals(text, "ingress")) return TrafficDirection::Ingress;
  if (iequals(text, "egress")) return TrafficDirection::Egress;
  if (iequals(text, "TRAFFIC_DIRECTION_UNKNOWN")) return TrafficDirection::Unknown;
  fail("unknown traffic direction '{}' (expected ingress or egress)", text);
}

std::string_view to_string(EventKind k) {
  switch (k) {
    case EventKind::Drop: return "drop";
    case EventKind::Trace: return "trace";
    case EventKind::PolicyVerdict: return "policy-verdict";
    case EventKind::L7: return "l7";
    default: return "unknown";
  }
}

std::string_view to_string(TracePoint p) {
  auto i = static_cast<size_t>(p);
  return i < kTracePointNames.size() ? kTracePointNames[i] : "unknown";
}

std::optional<TracePoint> parse_trace_point(std::string_view text) {
  for (size_t i = 0; i < kTracePointNames.size(); ++i) {
    if (iequals(text, kTracePointNames[i])) return static_cast<TracePoint>(i);
  }
  return std::nullopt;
}

int hubble_event_type(EventKind k) {
  switch (k) {
    case EventKind::Drop: return 1;
    case EventKind::Trace: return 4;
    case EventKind::PolicyVerdict: return 5;
    case EventKind::L7: return 129;
    default: return 0;
  }
}

EventKind event_kind_from_hubble(int type) {
  switch (type) {
    case 1: return EventKind::Drop;
    case 4: return EventKind::Trace;
    case 5: return EventKind::PolicyVerdict;
    case 129: return EventKind::L7;
    default: return EventKind::Unknown;
  }
}

int hubble_event_sub_type(const Flow& f) {
  switch (f.kind) {
    case EventKind::Trace: return static_cast<int>(f.trace_point);
    case EventKind::Drop: return f.drop_reason;
    default: return 0;
  }
}

std::string to_string(const FlowPolicy& p) {
  std::string out = p.kind.empty() ? std::string() : p.kind + " ";
  out += p.namespace_name.empty() ? p.name : p.namespace_name + "/" + p.name;
  if (!p.rule.empty()) out += " " + p.rule;
  return out;
}

std::string drop_reason_text(uint8_t reason) { return datapath::drop_reason_text(reason); }

std::optional<uint8_t> drop_reason_from_name(std::string_view name) {
  if (name.empty()) return std::nullopt;
  // drop_reason_name() is the one table of names; scanning 256 codes keeps it that way.
  for (int r = 1; r < 256; ++r) {
    if (iequals(datapath::drop_reason_name(static_cast<uint8_t>(r)), name)) return static_cast<uint8_t>(r);
  }
  return std::nullopt;
}

std::optional<std::string_view> reserved_identity_name(uint32_t identity) {
  for (const auto& [id, name] : kReservedIdentities) {
    if (id == identity) return name;
  }
  return std::nullopt;
}

std::optional<uint32_t> reserved_identity_from_name(std::string_view name) {
  for (const auto& [id, n] : kReservedIdentities) {
    if (iequals(n, name)) return id;
  }
  return std::nullopt;
}

std::string icmpv4_type_code_name(uint8_t type, uint8_t code) {
  switch (type) {
    case 0: return "EchoReply";
    case 3: {
      static constexpr std::array<std::string_view, 16> kUnreachable{
          "Net",           "Host",           "Protocol",           "Port",
          "FragmentationNeeded", "SourceRoutingFailed", "NetUnknown", "HostUnknown",
          "SourceIsolated", "NetAdminProhibited", "HostAdminProhibited", "NetTOS",
          "HostTOS",       "CommAdminProhibited", "HostPrecedence", "PrecedenceCutoff"};
      if (code < kUnreachable.size()) return "DestinationUnreachable(" + std::string(kUnreachable[code]) + ")";
      return "DestinationUnreachable(Code(" + std::to_string(code) + "))";
    }
    case 4: return "SourceQuench";
    case 5: return "Redirect";
    case 8: return "EchoRequest";
    case 9: return "RouterAdvertisement";
    case 10: return "RouterSolicitation";
    case 11: return code == 0 ? "TimeExceeded(TTLExceeded)" : code == 1 ? "TimeExceeded(FragmentReassemblyTimeExceeded)"
                                                                        : "TimeExceeded";
    case 12: return "ParameterProblem";
    case 13: return "TimestampRequest";
    case 14: return "TimestampReply";
    default: return "Type(" + std::to_string(type) + ") Code(" + std::to_string(code) + ")";
  }
}

std::string l4_summary(const L4& l4) {
  switch (l4.protocol) {
    case L4Protocol::Tcp: {
      std::string s = "TCP Flags:";
      const char* sep = " ";
      for (const auto& name : l4.tcp_flags.names()) {
        s += sep;
        s += name;
        sep = ", ";
      }
      return s;
    }
    case L4Protocol::Udp: return "UDP";
    case L4Protocol::Icmpv4: return "ICMPv4 " + icmpv4_type_code_name(l4.icmp_type, l4.icmp_code);
    default: return "IPv4";
  }
}

}  // namespace pilus::observe
