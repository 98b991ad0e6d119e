// FlowDecoder: crafted flow_event records -> Flows (kinds, byte order, pods, reserved identities, bad records).
#include "observe/flow_decoder.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "abi/drop_reasons.h"
#include "abi/events.h"
#include "abi/policy.h"
#include "abi/identity.h"
#include "abi/metrics.h"
#include "endpoint/ipv4.h"

namespace pilus::observe {
namespace {

uint32_t ip_be(const char* text) { return endpoint::parse_ipv4(text).network_order(); }
uint32_t ip_host(const char* text) { return endpoint::parse_ipv4(text).value; }

struct EventSpec {
  uint8_t type = EVENT_TRACE;
  uint8_t reason = TRACE_TO_ENDPOINT;
  uint8_t dir = METRIC_EGRESS;
  uint8_t proto = IPPROTO_TCP;
  const char* saddr = "10.244.0.5";
  const char* daddr = "10.244.0.6";
  uint16_t sport = 41234;
  uint16_t dport = 80;
  uint32_t src_identity = 1234;
  uint32_t dst_identity = 5678;
  uint16_t endpoint_id = 7;
  uint8_t tcp_flags = 0x02;  // SYN
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint8_t is_reply = 0;
  uint8_t policy_match_type = 0;
  uint32_t ifindex = 42;
  uint64_t timestamp_ns = 5'000'000'000;
  uint32_t policy_ref = 0;
};

// Builds the record the way bpf/lib/events.h fills it: addresses and ports in network byte order.
flow_event make_event(const EventSpec& s) {
  flow_event e;
  std::memset(&e, 0, sizeof(e));
  e.timestamp_ns = s.timestamp_ns;
  e.type = s.type;
  e.reason = s.reason;
  e.dir = s.dir;
  e.proto = s.proto;
  e.saddr = ip_be(s.saddr);
  e.daddr = ip_be(s.daddr);
  e.sport = htons(s.sport);
  e.dport = htons(s.dport);
  e.src_identity = s.src_identity;
  e.dst_identity = s.dst_identity;
  e.endpoint_id = s.endpoint_id;
  e.tcp_flags = s.tcp_flags;
  e.icmp_type = s.icmp_type;
  e.icmp_code = s.icmp_code;
  e.is_reply = s.is_reply;
  e.policy_match_type = s.policy_match_type;
  e.ifindex = s.ifindex;
  e.length = 74;
  e.policy_ref = s.policy_ref;
  return e;
}

class FakeResolver : public EndpointResolver {
 public:
  std::map<uint32_t, EndpointInfo> pods;
  std::map<uint32_t, std::vector<std::string>> labels;
  mutable std::vector<uint32_t> looked_up;

  std::optional<EndpointInfo> by_ip(uint32_t ip) const override {
    looked_up.push_back(ip);
    auto it = pods.find(ip);
    if (it == pods.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> labels_of(uint32_t identity) const override {
    auto it = labels.find(identity);
    return it == labels.end() ? std::vector<std::string>{} : it->second;
  }
  std::map<uint32_t, std::vector<FlowPolicy>> policies;
  std::vector<FlowPolicy> policies_of(uint32_t ref) const override {
    auto it = policies.find(ref);
    return it == policies.end() ? std::vector<FlowPolicy>{} : it->second;
  }
};

class ObserveDecoder : public ::testing::Test {
 protected:
  ObserveDecoder() : decoder(resolver, "node-1") {
    resolver.pods[ip_host("10.244.0.5")] = {"default", "frontend", 1234, 7};
    resolver.pods[ip_host("10.244.0.6")] = {"default", "backend", 5678, 9};
    resolver.labels[1234] = {"k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=default"};
    resolver.labels[5678] = {"k8s:app=backend", "k8s:io.kubernetes.pod.namespace=default"};
    // Monotonic 5 s is wall-clock 2024-11-24T10:01:02.123456789Z.
    decoder.set_wall_minus_monotonic([] { return std::chrono::nanoseconds(1732442462123456789LL - 5'000'000'000LL); });
  }

  std::optional<Flow> decode(const flow_event& e) { return decoder.decode(&e, sizeof(e)); }

  FakeResolver resolver;
  FlowDecoder decoder;
};

TEST_F(ObserveDecoder, ForwardedTcpSyn) {
  auto f = decode(make_event({}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, EventKind::Trace);
  EXPECT_EQ(f->verdict, Verdict::Forwarded);
  EXPECT_EQ(f->trace_point, TracePoint::ToEndpoint);
  EXPECT_EQ(f->drop_reason, 0);
  EXPECT_EQ(f->direction, TrafficDirection::Egress);
  ASSERT_TRUE(f->is_reply.has_value());
  EXPECT_FALSE(*f->is_reply);
  EXPECT_EQ(f->node_name, "node-1");
  EXPECT_EQ(f->ifindex, 42u);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::nanoseconds>(f->time.time_since_epoch()).count(),
            1732442462123456789LL);

  EXPECT_EQ(endpoint::to_string(f->source.ip), "10.244.0.5");
  EXPECT_EQ(f->source.port, 41234);
  EXPECT_EQ(f->source.namespace_name, "default");
  EXPECT_EQ(f->source.pod_name, "frontend");
  EXPECT_EQ(f->source.identity, 1234u);
  EXPECT_EQ(f->source.labels, resolver.labels[1234]);
  EXPECT_EQ(f->source.endpoint_id, 7);  // from the event: the egress hook belongs to the sender

  EXPECT_EQ(endpoint::to_string(f->destination.ip), "10.244.0.6");
  EXPECT_EQ(f->destination.port, 80);
  EXPECT_EQ(f->destination.pod_name, "backend");
  EXPECT_EQ(f->destination.identity, 5678u);
  EXPECT_EQ(f->destination.endpoint_id, 9);  // from the resolver

  EXPECT_EQ(f->l4.protocol, L4Protocol::Tcp);
  EXPECT_TRUE(f->l4.tcp_flags.syn);
  EXPECT_FALSE(f->l4.tcp_flags.ack);
  EXPECT_EQ(f->summary, "TCP Flags: SYN");
  EXPECT_EQ(decoder.decoded(), 1u);
  EXPECT_EQ(decoder.decode_errors(), 0u);
}

TEST_F(ObserveDecoder, TcpFlagBitsAndReplies) {
  auto f = decode(make_event({.reason = TRACE_TO_ENDPOINT, .tcp_flags = 0x12, .is_reply = 1}));
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->l4.tcp_flags.syn);
  EXPECT_TRUE(f->l4.tcp_flags.ack);
  EXPECT_EQ(f->summary, "TCP Flags: SYN, ACK");
  EXPECT_TRUE(*f->is_reply);

  auto g = decode(make_event({.tcp_flags = 0x01 | 0x04 | 0x08 | 0x10}));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->summary, "TCP Flags: ACK, PSH, FIN, RST");
  EXPECT_EQ(g->l4.tcp_flags.bits(), 0x1d);
}

TEST_F(ObserveDecoder, DroppedUdpWithReason) {
  auto f = decode(make_event({.type = EVENT_DROP,
                              .reason = DROP_POLICY_DENIED,
                              .dir = METRIC_INGRESS,
                              .proto = IPPROTO_UDP,
                              .sport = 5353,
                              .dport = 53,
                              .is_reply = 1}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, EventKind::Drop);
  EXPECT_EQ(f->verdict, Verdict::Dropped);
  EXPECT_EQ(f->drop_reason, DROP_POLICY_DENIED);
  EXPECT_EQ(f->direction, TrafficDirection::Ingress);
  EXPECT_FALSE(f->is_reply.has_value()) << "a drop does not know which side started";
  EXPECT_EQ(f->l4.protocol, L4Protocol::Udp);
  EXPECT_EQ(f->source.port, 5353);
  EXPECT_EQ(f->destination.port, 53);
  EXPECT_EQ(f->destination.endpoint_id, 7);  // the ingress hook belongs to the receiver
  EXPECT_EQ(f->summary, "UDP");
}

TEST_F(ObserveDecoder, IcmpEchoHasTypeAndNoPorts) {
  // The datapath puts the echo id into sport/dport to key conntrack; it is not a port.
  auto f = decode(make_event({.proto = IPPROTO_ICMP, .sport = 777, .dport = 777, .tcp_flags = 0, .icmp_type = 8}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->l4.protocol, L4Protocol::Icmpv4);
  EXPECT_EQ(f->l4.icmp_type, 8);
  EXPECT_EQ(f->l4.icmp_code, 0);
  EXPECT_EQ(f->source.port, 0);
  EXPECT_EQ(f->destination.port, 0);
  EXPECT_EQ(f->summary, "ICMPv4 EchoRequest");
}

TEST_F(ObserveDecoder, ReservedIdentitiesGetReservedLabelsAndNoPod) {
  // Even an address the resolver knows is not named as a pod when the datapath says "world".
  auto f = decode(make_event({.type = EVENT_DROP,
                              .reason = DROP_NO_ROUTE_OUTSIDE,
                              .daddr = "10.244.0.6",
                              .dst_identity = IDENTITY_WORLD}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->destination.identity, uint32_t{IDENTITY_WORLD});
  EXPECT_EQ(f->destination.labels, std::vector<std::string>{"reserved:world"});
  EXPECT_TRUE(f->destination.pod_name.empty());
  EXPECT_TRUE(f->destination.namespace_name.empty());

  auto h = decode(make_event({.saddr = "192.168.1.1", .src_identity = IDENTITY_HOST}));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->source.labels, std::vector<std::string>{"reserved:host"});
  EXPECT_TRUE(h->source.pod_name.empty());
  for (uint32_t ip : resolver.looked_up) EXPECT_NE(ip, ip_host("192.168.1.1")) << "reserved ids are not looked up";

  const std::pair<uint32_t, const char*> names[] = {
      {IDENTITY_UNMANAGED, "reserved:unmanaged"}, {IDENTITY_HEALTH, "reserved:health"},
      {IDENTITY_INIT, "reserved:init"},           {IDENTITY_REMOTE_NODE, "reserved:remote-node"},
      {IDENTITY_KUBE_APISERVER, "reserved:kube-apiserver"}, {IDENTITY_INGRESS, "reserved:ingress"}};
  for (const auto& [id, label] : names) {
    auto g = decode(make_event({.dst_identity = id}));
    ASSERT_TRUE(g);
    EXPECT_EQ(g->destination.labels, std::vector<std::string>{label});
  }
}

TEST_F(ObserveDecoder, UnknownIdentityFallsBackToThePodsOwn) {
  auto f = decode(make_event({.type = EVENT_DROP, .reason = DROP_INVALID_SOURCE_IP, .src_identity = 0, .dst_identity = 0}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->source.identity, 1234u);
  EXPECT_EQ(f->source.labels, resolver.labels[1234]);
  EXPECT_EQ(f->destination.identity, 5678u);

  // An address nobody owns keeps identity 0 and no labels.
  auto g = decode(make_event({.saddr = "10.9.9.9", .src_identity = 0}));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->source.identity, 0u);
  EXPECT_TRUE(g->source.labels.empty());
  EXPECT_TRUE(g->source.pod_name.empty());
}

TEST_F(ObserveDecoder, PolicyVerdicts) {
  auto allowed = decode(make_event(
      {.type = EVENT_POLICY_VERDICT, .reason = 0, .dir = METRIC_INGRESS, .policy_match_type = POLICY_MATCH_L3_L4}));
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->kind, EventKind::PolicyVerdict);
  EXPECT_EQ(allowed->verdict, Verdict::Forwarded);
  EXPECT_EQ(allowed->drop_reason, 0);
  EXPECT_EQ(allowed->policy_match_type, POLICY_MATCH_L3_L4);

  auto denied = decode(make_event({.type = EVENT_POLICY_VERDICT, .reason = DROP_POLICY_DENIED, .dir = METRIC_INGRESS}));
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->verdict, Verdict::Dropped);
  EXPECT_EQ(denied->drop_reason, DROP_POLICY_DENIED);
  EXPECT_EQ(denied->policy_match_type, POLICY_MATCH_NONE);

  auto drop = decode(make_event({.type = EVENT_DROP, .reason = DROP_POLICY_DENY, .policy_match_type = POLICY_MATCH_L4_ONLY}));
  ASSERT_TRUE(drop);
  EXPECT_EQ(drop->policy_match_type, POLICY_MATCH_L4_ONLY) << "a deny rule's drop names the kind of entry";
}

// A policy drop names what the datapath's reference names: the policies of a default deny,
// or the deny rule; other drops never look a reference up.
TEST_F(ObserveDecoder, PolicyDropsNameTheirCause) {
  resolver.policies[42] = {{"NetworkPolicy", "default", "allow-http", -1, ""}};
  resolver.policies[43] = {{"CiliumNetworkPolicy", "default", "deny-ssh", 0, "spec.ingressDeny[0]"}};
  auto f = decode(make_event({.type = EVENT_DROP, .reason = DROP_POLICY_DENIED, .dir = METRIC_INGRESS, .policy_ref = 42}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->policies, resolver.policies[42]);
  f = decode(make_event({.type = EVENT_DROP, .reason = DROP_POLICY_DENY, .dir = METRIC_INGRESS, .policy_ref = 43}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->policies, resolver.policies[43]);
  f = decode(make_event({.type = EVENT_DROP, .reason = DROP_CT_MAP_INSERTION_FAILED, .policy_ref = 42}));
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->policies.empty());
  f = decode(make_event({.type = EVENT_POLICY_VERDICT, .reason = 0, .policy_ref = 43}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->policies, resolver.policies[43]) << "an allowed verdict names its allow rule";
}

TEST_F(ObserveDecoder, TracePoints) {
  auto host = decode(make_event({.reason = TRACE_TO_HOST}));
  ASSERT_TRUE(host);
  EXPECT_EQ(host->trace_point, TracePoint::ToHost);
  auto from = decode(make_event({.reason = TRACE_FROM_ENDPOINT}));
  ASSERT_TRUE(from);
  EXPECT_EQ(from->trace_point, TracePoint::FromEndpoint);
}

TEST_F(ObserveDecoder, BadRecordsAreCountedNotDecoded) {
  flow_event e = make_event({});
  EXPECT_FALSE(decoder.decode(&e, sizeof(e) - 1));
  EXPECT_FALSE(decoder.decode(&e, 0));
  EXPECT_FALSE(decoder.decode(nullptr, sizeof(e)));
  EXPECT_FALSE(decode(make_event({.type = 99})));
  EXPECT_FALSE(decode(make_event({.type = EVENT_TRACE, .reason = 200})));
  EXPECT_EQ(decoder.decode_errors(), 5u);
  EXPECT_EQ(decoder.decoded(), 0u);

  // A longer record (a newer datapath appending fields) still decodes.
  std::vector<uint8_t> longer(sizeof(e) + 16, 0xAB);
  std::memcpy(longer.data(), &e, sizeof(e));
  EXPECT_TRUE(decoder.decode(longer.data(), longer.size()));
  EXPECT_EQ(decoder.decoded(), 1u);
}

TEST(ObserveDecoderClock, MonotonicStampsBecomeWallClockNow) {
  FakeResolver resolver;
  FlowDecoder decoder(resolver, "n");
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  flow_event e = make_event({.timestamp_ns = uint64_t(ts.tv_sec) * 1'000'000'000ULL + uint64_t(ts.tv_nsec)});
  auto f = decoder.decode(&e, sizeof(e));
  ASSERT_TRUE(f);
  auto skew = std::chrono::abs(Clock::now() - f->time);
  EXPECT_LT(skew, std::chrono::seconds(1));
}

}  // namespace
}  // namespace pilus::observe
