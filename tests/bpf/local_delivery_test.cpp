// Pod-to-pod delivery under BPF_PROG_TEST_RUN: from_pod runs the destination's ingress
// stage itself (policy, conntrack, reverse NAT of a service reply, counters and events in
// the destination's name, on its veth) and hands the packet straight into the pod.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <memory>
#include <string>
#include <vector>

#include "abi/conntrack.h"
#include "abi/drop_reasons.h"
#include "abi/endpoint.h"
#include "abi/events.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "datapath_fixture.h"
#include "packet_builder.h"
#include "service/service_maps.h"

namespace pilus::test {
namespace {

using namespace tcp_flag;

constexpr const char* CLIENT_IP = "10.0.1.10";
constexpr const char* SERVER_IP = "10.0.1.20";
constexpr const char* VIP = "10.96.0.10";
constexpr uint32_t CLIENT_IDENTITY = 1000;
constexpr uint32_t SERVER_IDENTITY = 2000;
constexpr uint16_t CLIENT_ENDPOINT = 11;
constexpr uint16_t SERVER_ENDPOINT = 22;

class LocalDeliveryTest : public DatapathTest {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    std::optional<int> second = second_device_ifindex();
    if (!second) GTEST_SKIP() << "needs a network device besides lo for the second pod";
    client_ = add_local_pod(CLIENT_IP, LOOPBACK_IFINDEX, CLIENT_IDENTITY, CLIENT_ENDPOINT);
    server_ = add_local_pod(SERVER_IP, *second, SERVER_IDENTITY, SERVER_ENDPOINT);
  }

  // The events of one packet, in the order the program wrote them.
  void expect_event(const flow_event& e, uint8_t type, uint8_t reason, uint8_t dir, const Pod& owner,
                    uint32_t src_identity, uint32_t dst_identity) const {
    SCOPED_TRACE(describe(e));
    EXPECT_EQ(int(e.type), int(type));
    EXPECT_EQ(int(e.reason), int(reason));
    EXPECT_EQ(int(e.dir), int(dir));
    EXPECT_EQ(e.endpoint_id, owner.endpoint_id);
    EXPECT_EQ(e.ifindex, uint32_t(owner.ifindex)) << "events name the veth of the pod they belong to";
    EXPECT_EQ(e.src_identity, src_identity);
    EXPECT_EQ(e.dst_identity, dst_identity);
    EXPECT_EQ(e.saddr, ipv4_address(CLIENT_IP));
    EXPECT_EQ(e.daddr, ipv4_address(SERVER_IP));
  }

  Pod client_;
  Pod server_;
};

TEST_F(LocalDeliveryTest, IngressDeniedPacketIsDroppedAtTheSenderInTheDestinationsName) {
  enforce_policy(server_, METRIC_INGRESS);
  auto syn = client_.send_to(SERVER_IP).tcp(40000, 80, SYN).build();
  RunResult r = run_from_pod(syn, client_.ifindex);

  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_SHOT));
  // The client's egress let it go; the server's ingress dropped it, as to_pod would have.
  EXPECT_EQ(counter(CLIENT_ENDPOINT, REASON_FORWARDED, METRIC_EGRESS).packets, 1u);
  EXPECT_EQ(counter(SERVER_ENDPOINT, DROP_POLICY_DENIED, METRIC_INGRESS).packets, 1u);
  EXPECT_EQ(counter(SERVER_ENDPOINT, DROP_POLICY_DENIED, METRIC_INGRESS).bytes, syn.size());
  EXPECT_EQ(all_counted_packets(), 2u);
  EXPECT_TRUE(ct_entry_for({CLIENT_IP, SERVER_IP, 40000, 80, IPPROTO_TCP}, CT_EGRESS).has_value());
  EXPECT_EQ(ct_entry_count(), 1u) << "a denied packet opens no ingress connection";

  std::vector<flow_event> events = drain_events();
  ASSERT_EQ(events.size(), 3u);
  expect_event(events[0], EVENT_TRACE, TRACE_FROM_ENDPOINT, METRIC_EGRESS, client_, CLIENT_IDENTITY, SERVER_IDENTITY);
  expect_event(events[1], EVENT_POLICY_VERDICT, DROP_POLICY_DENIED, METRIC_INGRESS, server_, CLIENT_IDENTITY,
               SERVER_IDENTITY);
  expect_event(events[2], EVENT_DROP, DROP_POLICY_DENIED, METRIC_INGRESS, server_, CLIENT_IDENTITY, SERVER_IDENTITY);
}

TEST_F(LocalDeliveryTest, IngressAllowedPacketIsRedirectedIntoThePodWithBothStagesDone) {
  enforce_policy(server_, METRIC_INGRESS);
  allow(server_, METRIC_INGRESS, {.peer_identity = CLIENT_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});
  auto syn = client_.send_to(SERVER_IP).tcp(40000, 80, SYN).build();
  RunResult r = run_from_pod(syn, client_.ifindex);

  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  EXPECT_EQ(r.output, server_.receive_from(CLIENT_IP).ttl(63).tcp(40000, 80, SYN).build());
  EXPECT_EQ(counter(CLIENT_ENDPOINT, REASON_FORWARDED, METRIC_EGRESS).packets, 1u);
  EXPECT_EQ(counter(SERVER_ENDPOINT, REASON_FORWARDED, METRIC_INGRESS).packets, 1u);
  EXPECT_EQ(all_counted_packets(), 2u);
  std::optional<ct_entry> in = ct_entry_for({CLIENT_IP, SERVER_IP, 40000, 80, IPPROTO_TCP}, CT_INGRESS);
  ASSERT_TRUE(in.has_value()) << "the server's ingress connection is opened by from_pod";
  EXPECT_EQ(in->src_identity, CLIENT_IDENTITY);
  EXPECT_EQ(in->dst_identity, SERVER_IDENTITY);
  EXPECT_TRUE(ct_entry_for({CLIENT_IP, SERVER_IP, 40000, 80, IPPROTO_TCP}, CT_EGRESS).has_value());
  EXPECT_EQ(ct_entry_count(), 2u);

  std::vector<flow_event> events = drain_events();
  ASSERT_EQ(events.size(), 3u);
  expect_event(events[0], EVENT_TRACE, TRACE_FROM_ENDPOINT, METRIC_EGRESS, client_, CLIENT_IDENTITY, SERVER_IDENTITY);
  expect_event(events[1], EVENT_POLICY_VERDICT, 0, METRIC_INGRESS, server_, CLIENT_IDENTITY, SERVER_IDENTITY);
  EXPECT_EQ(int(events[1].policy_match_type), int(POLICY_MATCH_L3_L4));
  expect_event(events[2], EVENT_TRACE, TRACE_TO_ENDPOINT, METRIC_INGRESS, server_, CLIENT_IDENTITY,
               SERVER_IDENTITY);

  // The server's SYN-ACK is a reply on both sides: no policy, delivered into the client.
  RunResult reply = run_from_pod(server_.send_to(CLIENT_IP).tcp(80, 40000, SYN | ACK).build(), server_.ifindex);
  EXPECT_EQ(reply.verdict, uint32_t(TC_ACT_REDIRECT));
  EXPECT_EQ(counter(CLIENT_ENDPOINT, REASON_FORWARDED, METRIC_INGRESS).packets, 1u);
  EXPECT_EQ(counter(SERVER_ENDPOINT, REASON_FORWARDED, METRIC_EGRESS).packets, 1u);
  EXPECT_EQ(ct_entry_count(), 2u) << "the reply opens nothing new";
}

TEST_F(LocalDeliveryTest, ServiceReplyOfALocalBackendLeavesItsPodFromTheVip) {
  service::ServiceMaps maps(datapath());
  service::Frontend f;
  f.service = "default/web";
  f.vip = endpoint::Ipv4::from_network_order(ipv4_address(VIP));
  f.port = 80;
  f.proto = IPPROTO_TCP;
  f.backends.push_back({"default/web-0", endpoint::Ipv4::from_network_order(ipv4_address(SERVER_IP)), 8080});
  maps.sync({f}, {});

  ASSERT_EQ(run_from_pod(client_.send_to(VIP).tcp(40001, 80, SYN).build(), client_.ifindex).verdict,
            uint32_t(TC_ACT_REDIRECT));
  RunResult r = run_from_pod(server_.send_to(CLIENT_IP).tcp(8080, 40001, SYN | ACK).build(), server_.ifindex);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  // What the client receives: the VIP's address and port, one hop less, valid checksums.
  auto expected = client_.receive_from(VIP).ttl(63).tcp(80, 40001, SYN | ACK).build();
  EXPECT_EQ(r.output, expected);
  EXPECT_EQ(counter(CLIENT_ENDPOINT, REASON_FORWARDED, METRIC_INGRESS).packets, 1u);
}

// The fallback when the packet cannot go straight into the pod: from_pod marks it and
// redirects it to the pod's veth, where to_pod must not judge (and count) it again.
TEST_F(LocalDeliveryTest, ToPodLetsAPacketJudgedByFromPodThroughOnce) {
  enforce_policy(server_, METRIC_INGRESS);
  auto syn = server_.receive_from(CLIENT_IP).ttl(63).tcp(40000, 80, SYN).build();

  RunResult judged = run_to_pod(syn, server_.ifindex, 1, MARK_INGRESS_DONE);
  EXPECT_EQ(judged.verdict, uint32_t(TC_ACT_OK));
  EXPECT_EQ(judged.output, syn);
  EXPECT_EQ(all_counted_packets(), 0u);
  EXPECT_EQ(ct_entry_count(), 0u);
  EXPECT_TRUE(drain_events().empty());

  // Any other mark is no pass: the ingress policy judges it.
  RunResult other = run_to_pod(syn, server_.ifindex, 1, MARK_INGRESS_DONE + 1);
  EXPECT_EQ(other.verdict, uint32_t(TC_ACT_SHOT));
  EXPECT_EQ(counter(SERVER_ENDPOINT, DROP_POLICY_DENIED, METRIC_INGRESS).packets, 1u);
}

}  // namespace
}  // namespace pilus::test
