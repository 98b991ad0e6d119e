// The L7 proxy's upstream leg in the real to_pod program (issue 12): a packet from the
// proxy's address carrying the upstream mark is judged by the server's ingress policy as
// the client the mark names, not as the node (which ingress always admits): a client the
// server does not admit is dropped with the normal policy drop and event, one it admits (at
// L3/L4 or through an L7 redirect entry) passes. Unmarked node traffic is still the node's,
// and a mark on anything but the proxy's address means nothing.
#include <arpa/inet.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include "abi/drop_reasons.h"
#include "abi/endpoint.h"
#include "abi/proxy.h"
#include "datapath_fixture.h"

namespace pilus::test {
namespace {

constexpr const char* SERVER_IP = "10.0.3.20";
constexpr const char* CLIENT_IP = "10.0.3.10";    // a local pod the server does not admit
constexpr const char* BACKEND_IP = "10.0.3.30";   // a local pod the server admits
constexpr const char* PROXY_IP = "10.0.3.1";      // the node's address on the pilus host device
constexpr const char* OTHER_HOST_IP = "10.0.9.1"; // another address of the node
constexpr uint32_t SERVER_IDENTITY = 4100, CLIENT_IDENTITY = 3100, BACKEND_IDENTITY = 5100;
constexpr int OTHER_IFINDEX = 0x7ffffff1;  // never the device a run arrives on

using namespace tcp_flag;

uint32_t mark_for(const char* client) {
  return MARK_PROXY_UPSTREAM_MAGIC | (ntohl(ipv4_address(client)) & MARK_PROXY_UPSTREAM_ADDR_MASK);
}

class ProxyUpstreamTest : public DatapathTest {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    server_ = add_local_pod(SERVER_IP, LOOPBACK_IFINDEX, SERVER_IDENTITY, 52);
    add_local_pod(CLIENT_IP, OTHER_IFINDEX, CLIENT_IDENTITY, 53);
    add_local_pod(BACKEND_IP, OTHER_IFINDEX, BACKEND_IDENTITY, 54);
    add_host_address(PROXY_IP);
    add_host_address(OTHER_HOST_IP);
    datapath().proxy_config().update(0, proxy_config{ipv4_address(PROXY_IP), 0});
    // The server admits only the backend, on 80/TCP.
    enforce_policy(server_, METRIC_INGRESS);
    allow(server_, METRIC_INGRESS, {.peer_identity = BACKEND_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});
  }

  RunResult from(const char* saddr, uint16_t sport, uint8_t flags, uint32_t mark) {
    return run_to_pod(server_.receive_from(saddr).tcp(sport, 80, flags).payload("GET / HTTP/1.1\r\n\r\n").build(),
                      LOOPBACK_IFINDEX, 1, mark);
  }

  Pod server_;
};

TEST_F(ProxyUpstreamTest, MarkedForAClientTheServerDoesNotAdmitIsDroppedAsThatClient) {
  drain_events();
  RunResult r = from(PROXY_IP, 41000, SYN, mark_for(CLIENT_IP));
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(TC_ACT_SHOT));
  bool drop_seen = false;
  for (const flow_event& e : drain_events())
    if (e.type == EVENT_DROP) {
      drop_seen = true;
      EXPECT_EQ(e.reason, DROP_POLICY_DENIED) << describe(e);
      EXPECT_EQ(e.src_identity, CLIENT_IDENTITY) << "judged as the client, not the host: " << describe(e);
      EXPECT_EQ(e.dir, METRIC_INGRESS);
    }
  EXPECT_TRUE(drop_seen);
  EXPECT_EQ(counter(52, DROP_POLICY_DENIED, METRIC_INGRESS).packets, 1u);
  EXPECT_FALSE(ct_entry_for({PROXY_IP, SERVER_IP, 41000, 80, IPPROTO_TCP}, CT_INGRESS)) << "no connection opened";
}

TEST_F(ProxyUpstreamTest, MarkedForAnAdmittedClientPasses) {
  RunResult r = from(PROXY_IP, 41001, SYN, mark_for(BACKEND_IP));
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_TRUE(ct_entry_for({PROXY_IP, SERVER_IP, 41001, 80, IPPROTO_TCP}, CT_INGRESS));
  // Every later packet is judged too: a policy that stops admitting the backend cuts it.
  EXPECT_EQ(from(PROXY_IP, 41001, ACK, mark_for(BACKEND_IP)).verdict, static_cast<uint32_t>(TC_ACT_OK));
  revoke(server_, METRIC_INGRESS, {.peer_identity = BACKEND_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});
  EXPECT_EQ(from(PROXY_IP, 41001, ACK, mark_for(BACKEND_IP)).verdict, static_cast<uint32_t>(TC_ACT_SHOT));
}

TEST_F(ProxyUpstreamTest, AnL7RedirectEntryForTheClientCountsAsAllowedAtL4) {
  // The server's own L7 rule for the client: the proxy has applied its HTTP rules already.
  policy_key key{};
  key.prefixlen = POLICY_PREFIX_FULL;
  key.endpoint_id = 52;
  key.direction = METRIC_INGRESS;
  key.identity = CLIENT_IDENTITY;
  key.protocol = IPPROTO_TCP;
  key.dport = htons(80);
  policy_entry entry{};
  entry.proxy_port = htons(15001);
  datapath().policy().update(key, entry);
  EXPECT_EQ(from(PROXY_IP, 41002, SYN, mark_for(CLIENT_IP)).verdict, static_cast<uint32_t>(TC_ACT_OK));
}

TEST_F(ProxyUpstreamTest, DenyEntryForTheClientDropsWithTheDenyReason) {
  deny(server_, METRIC_INGRESS, {.peer_identity = CLIENT_IDENTITY});
  EXPECT_EQ(from(PROXY_IP, 41003, SYN, mark_for(CLIENT_IP)).verdict, static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(counter(52, DROP_POLICY_DENY, METRIC_INGRESS).packets, 1u);
}

TEST_F(ProxyUpstreamTest, UnmarkedNodeTrafficIsStillTheNodes) {
  EXPECT_EQ(from(PROXY_IP, 41004, SYN, 0).verdict, static_cast<uint32_t>(TC_ACT_OK)) << "allow-localhost";
  EXPECT_EQ(from(PROXY_IP, 41005, SYN, 0x12345678).verdict, static_cast<uint32_t>(TC_ACT_OK)) << "a foreign mark";
}

TEST_F(ProxyUpstreamTest, MarkFromAnyOtherSourceThanTheProxyAddressMeansNothing) {
  // Another node address with the mark: the node's (not a client's) — only the proxy's socket vouches.
  EXPECT_EQ(from(OTHER_HOST_IP, 41006, SYN, mark_for(BACKEND_IP)).verdict, static_cast<uint32_t>(TC_ACT_OK));
  // A pod's packet with a mark naming the admitted backend is judged as the pod that sent it.
  EXPECT_EQ(from(CLIENT_IP, 41007, SYN, mark_for(BACKEND_IP)).verdict, static_cast<uint32_t>(TC_ACT_SHOT));
  // With the proxy switched off, nothing is read from marks.
  datapath().proxy_config().update(0, proxy_config{0, 0});
  EXPECT_EQ(from(PROXY_IP, 41008, SYN, mark_for(CLIENT_IP)).verdict, static_cast<uint32_t>(TC_ACT_OK));
}

TEST_F(ProxyUpstreamTest, UpstreamMarkNeverCollidesWithIngressDone) {
  EXPECT_NE(MARK_INGRESS_DONE & MARK_PROXY_UPSTREAM_MAGIC_MASK, static_cast<uint32_t>(MARK_PROXY_UPSTREAM_MAGIC));
  // A packet marked ingress-done is let through as before, not read as a client.
  EXPECT_EQ(from(PROXY_IP, 41009, SYN, MARK_INGRESS_DONE).verdict, static_cast<uint32_t>(TC_ACT_OK));
}

}  // namespace
}  // namespace pilus::test
