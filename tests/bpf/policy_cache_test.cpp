// The policy verdict cached in a conntrack entry (lib/conntrack.h, ct_allow_cached): a packet of a
// known connection skips the policy lookups while the entry's revision is the current policy
// revision and the identities are the ones it was checked with; the agent bumps the revision
// after every change, so a removed allow or a new deny still cuts the connection at once.
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <optional>

#include "abi/conntrack.h"
#include "abi/drop_reasons.h"
#include "abi/identity.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "datapath_fixture.h"
#include "packet_builder.h"

namespace pilus::test {
namespace {

using namespace tcp_flag;

constexpr const char* CLIENT_IP = "10.0.7.10";
constexpr const char* SERVER_IP = "10.0.7.20";
constexpr const char* NODE_IP = "10.0.7.1";
constexpr uint32_t CLIENT_IDENTITY = 7100;
constexpr uint32_t SERVER_IDENTITY = 7200;
constexpr uint32_t OTHER_IDENTITY = 7300;
constexpr uint16_t CLIENT_ENDPOINT = 71;
constexpr uint16_t SERVER_ENDPOINT = 72;
constexpr uint16_t SPORT = 43000, DPORT = 8080;
// The server's ifindex: runs here only ever arrive on the client's (loopback).
constexpr int NOT_A_DEVICE = 0x7ffffff0;

const Tuple CLIENT_TO_SERVER{CLIENT_IP, SERVER_IP, SPORT, DPORT, IPPROTO_TCP};
const Tuple CLIENT_TO_NODE{CLIENT_IP, NODE_IP, SPORT, 22, IPPROTO_TCP};

class PolicyCacheTest : public DatapathTest {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    client_ = add_local_pod(CLIENT_IP, LOOPBACK_IFINDEX, CLIENT_IDENTITY, CLIENT_ENDPOINT);
    server_ = add_local_pod(SERVER_IP, NOT_A_DEVICE, SERVER_IDENTITY, SERVER_ENDPOINT);
    add_host_address(NODE_IP);
    // Both ends judge: the client's egress and the server's ingress are default deny.
    enforce_policy(client_, METRIC_EGRESS);
    enforce_policy(server_, METRIC_INGRESS);
    allow(client_, METRIC_EGRESS, to_server_);
    allow(server_, METRIC_INGRESS, from_client_);
  }

  uint32_t send(uint8_t flags) const {
    return run_from_pod(client_.send_to(SERVER_IP).tcp(SPORT, DPORT, flags).build(), client_.ifindex).verdict;
  }
  // The server's answer, as from_pod on the server's veth sees it (ctx ifindex must be its own).
  uint32_t reply(uint8_t flags) const {
    return run_from_pod(server_.send_to(CLIENT_IP).tcp(DPORT, SPORT, flags).build(), server_.ifindex).verdict;
  }
  void establish() {
    ASSERT_EQ(send(SYN), static_cast<uint32_t>(TC_ACT_REDIRECT));
    ASSERT_EQ(send(ACK), static_cast<uint32_t>(TC_ACT_REDIRECT));
  }
  // Writes the policy map as a stray writer would: no revision bump.
  void erase_without_bump(const Pod& pod, uint8_t dir, const PolicyMatch& m) const {
    policy_key key{};
    key.prefixlen = POLICY_PREFIX_FULL;
    key.endpoint_id = pod.endpoint_id;
    key.direction = dir;
    key.identity = m.peer_identity;
    key.protocol = *m.proto;
    key.dport = htons(m.dport);
    ASSERT_TRUE(datapath().policy().erase(key));
  }

  Pod client_, server_;
  const PolicyMatch to_server_{.peer_identity = SERVER_IDENTITY, .proto = IPPROTO_TCP, .dport = DPORT};
  const PolicyMatch from_client_{.peer_identity = CLIENT_IDENTITY, .proto = IPPROTO_TCP, .dport = DPORT};
};

TEST_F(PolicyCacheTest, AllowedConnectionIsStampedWithTheCurrentRevisionOnBothEnds) {
  const uint32_t revision = datapath().policy_revision().lookup(0).value_or(0);
  ASSERT_NE(revision, 0u) << "the fixture's writes bump the revision";
  establish();
  EXPECT_EQ(ct_entry_for(CLIENT_TO_SERVER, CT_EGRESS).value().policy_revision, revision);
  EXPECT_EQ(ct_entry_for(CLIENT_TO_SERVER, CT_INGRESS).value().policy_revision, revision);
}

TEST_F(PolicyCacheTest, CachedAllowIsRecheckedAfterARevisionBump) {
  establish();
  // Without a bump the stamped entries keep the connection going: the lookups are skipped.
  erase_without_bump(client_, METRIC_EGRESS, to_server_);
  EXPECT_EQ(send(ACK), static_cast<uint32_t>(TC_ACT_REDIRECT)) << "the cached verdict was not used";
  // The bump makes every stamp stale: the next packet is judged by today's map, and dropped.
  datapath().bump_policy_revision();
  EXPECT_EQ(send(ACK), static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(counter(CLIENT_ENDPOINT, DROP_POLICY_DENIED, METRIC_EGRESS).packets, 1u);
}

TEST_F(PolicyCacheTest, RemovedIngressAllowCutsTheConnectionAtOnce) {
  establish();
  revoke(server_, METRIC_INGRESS, from_client_);
  EXPECT_EQ(send(ACK), static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(counter(SERVER_ENDPOINT, DROP_POLICY_DENIED, METRIC_INGRESS).packets, 1u);
}

TEST_F(PolicyCacheTest, DenyInsertedAfterTheConnectionIsEstablishedCutsIt) {
  establish();
  // A deny of the port for any peer, beside the allow that stays: a deny found wins.
  deny(server_, METRIC_INGRESS, PolicyMatch{.peer_identity = 0, .proto = IPPROTO_TCP, .dport = DPORT});
  EXPECT_EQ(send(ACK), static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(counter(SERVER_ENDPOINT, DROP_POLICY_DENY, METRIC_INGRESS).packets, 1u);
  // And it stays cut: a drop never stamps the entry.
  EXPECT_EQ(send(ACK), static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(counter(SERVER_ENDPOINT, DROP_POLICY_DENY, METRIC_INGRESS).packets, 2u);
}

TEST_F(PolicyCacheTest, RepliesPassWithStaleAndCurrentRevisions) {
  if (!second_device_ifindex()) GTEST_SKIP() << "the server's from_pod needs a second device";
  // The server on a real device, so from_pod can run as its veth.
  server_ = add_local_pod(SERVER_IP, *second_device_ifindex(), SERVER_IDENTITY, SERVER_ENDPOINT);
  enforce_policy(server_, METRIC_INGRESS);
  enforce_policy(server_, METRIC_EGRESS);  // the server opens nothing, but may answer
  establish();
  EXPECT_EQ(reply(SYN | ACK), static_cast<uint32_t>(TC_ACT_REDIRECT));
  datapath().bump_policy_revision();
  EXPECT_EQ(reply(ACK), static_cast<uint32_t>(TC_ACT_REDIRECT));
  EXPECT_EQ(send(ACK), static_cast<uint32_t>(TC_ACT_REDIRECT)) << "still allowed after the re-check";
  EXPECT_EQ(reply(ACK), static_cast<uint32_t>(TC_ACT_REDIRECT));
  EXPECT_EQ(ct_entry_for(CLIENT_TO_SERVER, CT_INGRESS).value().packets_rev, 3u);
}

TEST_F(PolicyCacheTest, ChangedIdentityIsRecheckedWithoutABump) {
  establish();
  // The server pod relabelled: a new identity in its endpoint entry. Its stamp was taken for
  // the old identity, so the next packet is judged again, for the new one: no allow names it.
  auto endpoints = datapath().endpoints();
  endpoint_info info = endpoints.lookup(endpoint_key{ipv4_address(SERVER_IP)}).value();
  info.identity = OTHER_IDENTITY;
  endpoints.update(endpoint_key{ipv4_address(SERVER_IP)}, info);
  EXPECT_EQ(send(ACK), static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_EQ(counter(CLIENT_ENDPOINT, DROP_POLICY_DENIED, METRIC_EGRESS).packets, 1u);
}

TEST_F(PolicyCacheTest, ConnectionToTheNodeIsCachedAndCutByARemovedAllow) {
  const PolicyMatch ssh{.peer_identity = IDENTITY_HOST, .proto = IPPROTO_TCP, .dport = 22};
  allow(client_, METRIC_EGRESS, ssh);
  auto to_node = [&](uint8_t flags) {
    return run_from_pod(client_.send_to(NODE_IP).tcp(SPORT, 22, flags).build(), client_.ifindex).verdict;
  };
  ASSERT_EQ(to_node(SYN), static_cast<uint32_t>(TC_ACT_OK));
  const uint32_t revision = datapath().policy_revision().lookup(0).value();
  EXPECT_EQ(ct_entry_for(CLIENT_TO_NODE, CT_EGRESS).value().policy_revision, revision);
  // Many packets in one kernel call (the program leaves such a packet as it is).
  EXPECT_EQ(run_from_pod(client_.send_to(NODE_IP).tcp(SPORT, 22, ACK).build(), client_.ifindex, 1000).verdict,
            static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(ct_entry_for(CLIENT_TO_NODE, CT_EGRESS).value().packets_fwd, 1001u);
  revoke(client_, METRIC_EGRESS, ssh);
  EXPECT_EQ(to_node(ACK), static_cast<uint32_t>(TC_ACT_SHOT));
}

TEST_F(PolicyCacheTest, L7RedirectedConnectionIsNeverStamped) {
  // An allow that asks for the proxy: the SYN's proxy decision must be taken again on a
  // retransmitted SYN, so such an entry keeps no cached verdict.
  policy_key key{};
  key.prefixlen = POLICY_PREFIX_FULL;
  key.endpoint_id = CLIENT_ENDPOINT;
  key.direction = METRIC_EGRESS;
  key.identity = SERVER_IDENTITY;
  key.protocol = IPPROTO_TCP;
  key.dport = htons(DPORT);
  policy_entry entry{};
  entry.match_type = policy_match_type_of(&key);
  entry.proxy_port = htons(15001);
  datapath().policy().update(key, entry);
  datapath().bump_policy_revision();
  send(SYN);
  std::optional<ct_entry> e = ct_entry_for(CLIENT_TO_SERVER, CT_EGRESS);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->policy_revision, 0u);
}

}  // namespace
}  // namespace pilus::test
