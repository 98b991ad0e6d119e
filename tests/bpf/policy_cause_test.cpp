// Policy in the real pod programs, for what issue 13 added: egress named ports resolved per
// destination pod (entries keyed by the destination endpoint, looked up only for endpoints
// flagged to have them), and the references drop and verdict events carry so a drop names
// its cause (the deny rule, or the policies behind a default deny).
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <cstdint>
#include <vector>

#include "abi/drop_reasons.h"
#include "abi/events.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "datapath_fixture.h"

namespace pilus::test {
namespace {

using namespace tcp_flag;

constexpr const char* CLIENT_IP = "10.0.5.10";
constexpr const char* SERVER_IP = "10.0.5.20";
constexpr const char* TWIN_IP = "10.0.5.21";  // the server's identity, another pod
constexpr uint32_t CLIENT_IDENTITY = 7000, SERVER_IDENTITY = 8000;
constexpr uint16_t CLIENT_ENDPOINT = 61, SERVER_ENDPOINT = 62, TWIN_ENDPOINT = 63;
constexpr int FAKE_IFINDEX = 0x7ffffff0;  // never the device a run arrives on

class PolicyCauseTest : public DatapathTest {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    client_ = add_local_pod(CLIENT_IP, LOOPBACK_IFINDEX, CLIENT_IDENTITY, CLIENT_ENDPOINT);
    server_ = add_local_pod(SERVER_IP, FAKE_IFINDEX, SERVER_IDENTITY, SERVER_ENDPOINT);
    twin_ = add_local_pod(TWIN_IP, FAKE_IFINDEX - 1, SERVER_IDENTITY, TWIN_ENDPOINT);
    enforce_policy(client_, METRIC_EGRESS);
  }

  uint32_t syn(const char* to, uint16_t sport, uint16_t dport) {
    return run_from_pod(client_.send_to(to).tcp(sport, dport, SYN).build(), LOOPBACK_IFINDEX).verdict;
  }

  // The drop events of the last runs, as (reason, policy_ref).
  std::vector<std::pair<uint8_t, uint32_t>> drops() {
    std::vector<std::pair<uint8_t, uint32_t>> out;
    for (const flow_event& e : drain_events())
      if (e.type == EVENT_DROP) out.emplace_back(e.reason, e.policy_ref);
    return out;
  }

  Pod client_, server_, twin_;
};

// "web" is 81 on the server and 80 on its twin (one identity): each gets its own entry.
TEST_F(PolicyCauseTest, EgressNamedPortEntriesAreKeyedByTheDestinationPod) {
  add_endpoint_flags(client_, ENDPOINT_F_EGRESS_PER_PEER);
  allow(client_, METRIC_EGRESS,
        {.peer_identity = SERVER_ENDPOINT, .proto = IPPROTO_TCP, .dport = 81, .peer_kind = POLICY_PEER_ENDPOINT});
  allow(client_, METRIC_EGRESS,
        {.peer_identity = TWIN_ENDPOINT, .proto = IPPROTO_TCP, .dport = 80, .peer_kind = POLICY_PEER_ENDPOINT});

  EXPECT_EQ(syn(SERVER_IP, 40000, 81), uint32_t(TC_ACT_REDIRECT));
  EXPECT_EQ(syn(SERVER_IP, 40001, 80), uint32_t(TC_ACT_SHOT)) << "80 is web on the twin only";
  EXPECT_EQ(syn(TWIN_IP, 40002, 80), uint32_t(TC_ACT_REDIRECT));
  EXPECT_EQ(syn(TWIN_IP, 40003, 81), uint32_t(TC_ACT_SHOT));
  EXPECT_EQ(counter(CLIENT_ENDPOINT, DROP_POLICY_DENIED, METRIC_EGRESS).packets, 2u);
}

// Without the endpoint flag the datapath does not look those entries up (no cost for others).
TEST_F(PolicyCauseTest, PerPeerEntriesNeedTheEndpointFlag) {
  allow(client_, METRIC_EGRESS,
        {.peer_identity = SERVER_ENDPOINT, .proto = IPPROTO_TCP, .dport = 81, .peer_kind = POLICY_PEER_ENDPOINT});
  EXPECT_EQ(syn(SERVER_IP, 40010, 81), uint32_t(TC_ACT_SHOT));
  add_endpoint_flags(client_, ENDPOINT_F_EGRESS_PER_PEER);
  EXPECT_EQ(syn(SERVER_IP, 40011, 81), uint32_t(TC_ACT_REDIRECT));
}

// A deny keyed by the destination pod wins over an identity allow, as every deny does.
TEST_F(PolicyCauseTest, PerPeerDenyWinsAndNamesItsRule) {
  add_endpoint_flags(client_, ENDPOINT_F_EGRESS_PER_PEER);
  allow(client_, METRIC_EGRESS, {.peer_identity = SERVER_IDENTITY, .rule_id = 11});
  deny(client_, METRIC_EGRESS,
       {.peer_identity = SERVER_ENDPOINT, .proto = IPPROTO_TCP, .dport = 81, .peer_kind = POLICY_PEER_ENDPOINT,
        .rule_id = 0xabcdef});
  drain_events();
  EXPECT_EQ(syn(SERVER_IP, 40020, 81), uint32_t(TC_ACT_SHOT));
  EXPECT_EQ(syn(TWIN_IP, 40021, 81), uint32_t(TC_ACT_REDIRECT));
  EXPECT_EQ(drops(), (std::vector<std::pair<uint8_t, uint32_t>>{{DROP_POLICY_DENY, 0xabcdef}}));
}

// Default deny: the drop carries the endpoint's default-deny reference; a deny rule its own.
TEST_F(PolicyCauseTest, DropEventsCarryTheirCause) {
  default_deny_ref(client_, METRIC_EGRESS, 0x1234);
  deny(client_, METRIC_EGRESS, {.peer_identity = SERVER_IDENTITY, .proto = IPPROTO_TCP, .dport = 22, .rule_id = 77});
  drain_events();
  EXPECT_EQ(syn(SERVER_IP, 40030, 80), uint32_t(TC_ACT_SHOT));
  EXPECT_EQ(syn(SERVER_IP, 40031, 22), uint32_t(TC_ACT_SHOT));
  EXPECT_EQ(drops(), (std::vector<std::pair<uint8_t, uint32_t>>{{DROP_POLICY_DENIED, 0x1234}, {DROP_POLICY_DENY, 77}}));
  // The default-deny record is not an allow: nothing else passes because of it.
  EXPECT_EQ(syn(TWIN_IP, 40032, 80), uint32_t(TC_ACT_SHOT));
}

}  // namespace
}  // namespace pilus::test
