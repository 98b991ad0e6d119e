// flow_event -> Flow: byte order, event kinds, clocks and the pod names behind addresses.
#include "observe/flow_decoder.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <ctime>

#include "abi/drop_reasons.h"
#include "abi/events.h"
#include "abi/metrics.h"

namespace pilus::observe {

namespace {

std::chrono::nanoseconds clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

std::optional<TracePoint> trace_point_of(uint8_t point) {
  switch (point) {
    case TRACE_TO_ENDPOINT: return TracePoint::ToEndpoint;
    case TRACE_TO_HOST: return TracePoint::ToHost;
    case TRACE_FROM_ENDPOINT: return TracePoint::FromEndpoint;
    default: return std::nullopt;
  }
}

}  // namespace

std::chrono::nanoseconds wall_minus_monotonic_now() {
  // Monotonic read between two realtime reads halves the error a preemption could add.
  auto wall1 = clock_ns(CLOCK_REALTIME);
  auto mono = clock_ns(CLOCK_MONOTONIC);
  auto wall2 = clock_ns(CLOCK_REALTIME);
  return wall1 + (wall2 - wall1) / 2 - mono;
}

FlowDecoder::FlowDecoder(const EndpointResolver& resolver, std::string node_name)
    : resolver_(resolver), node_name_(std::move(node_name)), offset_(wall_minus_monotonic_now) {}

FlowEndpoint FlowDecoder::resolve(uint32_t addr_be, uint16_t port_be, bool has_ports, uint32_t identity) const {
  FlowEndpoint ep;
  ep.ip = endpoint::Ipv4::from_network_order(addr_be);
  ep.port = has_ports ? ntohs(port_be) : 0;
  ep.identity = identity;
  // A reserved identity names a kind of peer (host, world, ...), never a pod, so it is labelled by
  // its name and not looked up.
  if (auto name = reserved_identity_name(identity)) {
    ep.labels = {"reserved:" + std::string(*name)};
    return ep;
  }
  if (ep.ip.value != 0) {
    if (auto info = resolver_.by_ip(ep.ip.value)) {
      ep.namespace_name = info->namespace_name;
      ep.pod_name = info->pod_name;
      ep.endpoint_id = info->endpoint_id;
      // A drop before the datapath looked the identity up reports 0; the pod's own identity is
      // then the best answer.
      if (ep.identity == 0) ep.identity = info->identity;
    }
  }
  if (ep.identity != 0) ep.labels = resolver_.labels_of(ep.identity);
  return ep;
}

std::optional<Flow> FlowDecoder::decode(const void* data, size_t size) {
  if (data == nullptr || size < sizeof(flow_event)) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  flow_event e;
  std::memcpy(&e, data, sizeof(e));  // the ring buffer gives no alignment promise for our struct

  Flow f;
  switch (e.type) {
    case EVENT_DROP:
      f.kind = EventKind::Drop;
      f.verdict = Verdict::Dropped;
      f.drop_reason = e.reason;
      f.policy_match_type = e.policy_match_type;
      break;  // is_reply stays unknown: drops can happen before conntrack ran
    case EVENT_TRACE: {
      auto point = trace_point_of(e.reason);
      if (!point) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        return std::nullopt;
      }
      f.kind = EventKind::Trace;
      f.verdict = Verdict::Forwarded;
      f.trace_point = *point;
      f.is_reply = e.is_reply != 0;
      break;
    }
    case EVENT_POLICY_VERDICT:
      f.kind = EventKind::PolicyVerdict;
      f.verdict = e.reason == 0 ? Verdict::Forwarded : Verdict::Dropped;
      f.drop_reason = e.reason;
      f.policy_match_type = e.policy_match_type;
      f.is_reply = e.is_reply != 0;
      break;
    default:
      errors_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
  }

  auto offset = offset_ ? offset_() : wall_minus_monotonic_now();
  f.time = TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(e.timestamp_ns) + offset));
  f.node_name = node_name_;
  f.direction = e.dir == METRIC_INGRESS  ? TrafficDirection::Ingress
                : e.dir == METRIC_EGRESS ? TrafficDirection::Egress
                                         : TrafficDirection::Unknown;
  f.ifindex = e.ifindex;

  bool has_ports = false;
  switch (e.proto) {
    case IPPROTO_TCP:
      f.l4.protocol = L4Protocol::Tcp;
      f.l4.tcp_flags = TcpFlags::from_bits(e.tcp_flags);
      has_ports = true;
      break;
    case IPPROTO_UDP:
      f.l4.protocol = L4Protocol::Udp;
      has_ports = true;
      break;
    case IPPROTO_ICMP:
      // The datapath keys ICMP echo on its id through sport/dport; that is not a port to show.
      f.l4.protocol = L4Protocol::Icmpv4;
      f.l4.icmp_type = e.icmp_type;
      f.l4.icmp_code = e.icmp_code;
      break;
    default: break;
  }
  f.source = resolve(e.saddr, e.sport, has_ports, e.src_identity);
  f.destination = resolve(e.daddr, e.dport, has_ports, e.dst_identity);
  // The event's endpoint is the pod whose hook saw the packet: the sender on egress, the receiver
  // on ingress.
  if (e.endpoint_id != 0) {
    if (f.direction == TrafficDirection::Egress) f.source.endpoint_id = e.endpoint_id;
    if (f.direction == TrafficDirection::Ingress) f.destination.endpoint_id = e.endpoint_id;
  }
  // The reference is what the datapath held when it decided, so the names stay right even
  // if the policy changed since (see policy_ref.h).
  if ((f.kind == EventKind::Drop || f.kind == EventKind::PolicyVerdict) && e.policy_ref != 0 &&
      (f.kind == EventKind::PolicyVerdict || f.drop_reason == DROP_POLICY_DENIED || f.drop_reason == DROP_POLICY_DENY))
    f.policies = resolver_.policies_of(e.policy_ref);
  f.summary = l4_summary(f.l4);
  decoded_.fetch_add(1, std::memory_order_relaxed);
  return f;
}

}  // namespace pilus::observe
