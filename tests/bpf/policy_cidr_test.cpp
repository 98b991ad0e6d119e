// CIDR policy in the real pod programs: a peer's address matches a policy CIDR through the
// policy_cidrs trie, which the datapath searches only while the agent's policy_cidrs_count
// says it holds prefixes. Checks that fromCIDR allows and denies still decide, that the
// count gates the search, and that with no CIDR policy every verdict is what it was.
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "abi/drop_reasons.h"
#include "abi/identity.h"
#include "abi/ipcache.h"
#include "abi/metrics.h"
#include "datapath_fixture.h"

namespace pilus::test {
namespace {

using namespace tcp_flag;

constexpr const char* POD_A_IP = "10.0.4.10";  // the pod whose ingress policy is judged
constexpr const char* POD_B_IP = "10.0.4.20";
constexpr const char* IN_CIDR_IP = "203.0.113.9";   // outside, in the policy's CIDR
constexpr const char* OTHER_WORLD_IP = "198.51.100.7";  // outside, in no CIDR
constexpr uint32_t POD_A_IDENTITY = 5000, POD_B_IDENTITY = 6000;
constexpr uint16_t POD_A_ENDPOINT = 51, POD_B_ENDPOINT = 52;
constexpr uint32_t OUTSIDE_CIDR_IDENTITY = IDENTITY_FIRST_LOCAL + 7;  // 203.0.113.0/24
constexpr uint32_t PODS_CIDR_IDENTITY = IDENTITY_FIRST_LOCAL + 8;     // 10.0.4.0/24: pod B's address
constexpr uint32_t UNRELATED_CIDR_IDENTITY = IDENTITY_FIRST_LOCAL + 9;  // 192.0.2.0/24: nobody here
constexpr int POD_B_IFINDEX = 0x7ffffff0;  // never the device a run arrives on

class PolicyCidrTest : public DatapathTest {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    a_ = add_local_pod(POD_A_IP, LOOPBACK_IFINDEX, POD_A_IDENTITY, POD_A_ENDPOINT);
    b_ = add_local_pod(POD_B_IP, POD_B_IFINDEX, POD_B_IDENTITY, POD_B_ENDPOINT);
    enforce_policy(a_, METRIC_INGRESS);
  }

  // A CIDR a policy names, as the agent writes it: the prefix, then the count the datapath reads.
  void policy_cidr(const char* network, uint32_t length, uint32_t identity) {
    datapath().policy_cidrs().update(ipcache_key{length, ipv4_address(network)}, ipcache_value{identity, 0});
    datapath().policy_cidrs_count().update(0, static_cast<uint32_t>(datapath().policy_cidrs().count()));
  }

  // A SYN from `saddr` to pod A, as to_pod sees it: the verdict.
  uint32_t syn_to_a(const char* saddr, uint16_t sport, uint16_t dport) {
    return run_to_pod(a_.receive_from(saddr).tcp(sport, dport, SYN).build(), LOOPBACK_IFINDEX).verdict;
  }

  Pod a_, b_;
};

TEST_F(PolicyCidrTest, FromCidrAllowAdmitsItsAddressesAndNoOthers) {
  policy_cidr("203.0.113.0", 24, OUTSIDE_CIDR_IDENTITY);
  allow(a_, METRIC_INGRESS, {.peer_identity = OUTSIDE_CIDR_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});

  EXPECT_EQ(syn_to_a(IN_CIDR_IP, 40000, 80), uint32_t(TC_ACT_OK));
  EXPECT_EQ(syn_to_a(OTHER_WORLD_IP, 40001, 80), uint32_t(TC_ACT_SHOT));
  EXPECT_EQ(syn_to_a(IN_CIDR_IP, 40002, 81), uint32_t(TC_ACT_SHOT)) << "the rule names port 80 only";
  EXPECT_EQ(counter(POD_A_ENDPOINT, DROP_POLICY_DENIED, METRIC_INGRESS).packets, 2u);
}

TEST_F(PolicyCidrTest, ToCidrAllowReachesAPodByItsAddress) {
  enforce_policy(a_, METRIC_EGRESS);
  policy_cidr("10.0.4.0", 24, PODS_CIDR_IDENTITY);
  allow(a_, METRIC_EGRESS, {.peer_identity = PODS_CIDR_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});

  auto syn_to_b = [&](uint16_t sport, uint16_t dport) {
    return run_from_pod(a_.send_to(POD_B_IP).tcp(sport, dport, SYN).build(), LOOPBACK_IFINDEX).verdict;
  };
  EXPECT_EQ(syn_to_b(40030, 80), uint32_t(TC_ACT_REDIRECT)) << "delivered to pod B's veth";
  EXPECT_EQ(syn_to_b(40031, 81), uint32_t(TC_ACT_SHOT));
}

// A CIDR deny holding a pod's address wins over an allow of that pod's identity.
TEST_F(PolicyCidrTest, FromCidrDenyBeatsAnAllowOfThePodsIdentity) {
  policy_cidr("10.0.4.0", 24, PODS_CIDR_IDENTITY);
  allow(a_, METRIC_INGRESS, {.peer_identity = POD_B_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});
  deny(a_, METRIC_INGRESS, {.peer_identity = PODS_CIDR_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});

  EXPECT_EQ(syn_to_a(POD_B_IP, 40010, 80), uint32_t(TC_ACT_SHOT));
  EXPECT_EQ(counter(POD_A_ENDPOINT, DROP_POLICY_DENY, METRIC_INGRESS).packets, 1u);
}

// The count is the switch: prefixes in the trie with a count of 0 are not searched. This is
// why the agent raises the count before it adds a prefix.
TEST_F(PolicyCidrTest, TheTrieIsNotSearchedWhileTheCountIsZero) {
  policy_cidr("203.0.113.0", 24, OUTSIDE_CIDR_IDENTITY);
  allow(a_, METRIC_INGRESS, {.peer_identity = OUTSIDE_CIDR_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});
  ASSERT_EQ(syn_to_a(IN_CIDR_IP, 40020, 80), uint32_t(TC_ACT_OK));

  datapath().policy_cidrs_count().update(0, 0);
  EXPECT_EQ(syn_to_a(IN_CIDR_IP, 40021, 80), uint32_t(TC_ACT_SHOT));
}

// Without any CIDR policy (nothing in the trie, count 0) every identity-based verdict is the
// one the same policy gives while the trie holds a prefix that covers none of the peers.
TEST_F(PolicyCidrTest, WithoutCidrPolicyIdentityVerdictsAreUnchanged) {
  allow(a_, METRIC_INGRESS, {.peer_identity = POD_B_IDENTITY, .proto = IPPROTO_TCP, .dport = 80});
  allow(a_, METRIC_INGRESS, {.peer_identity = 0, .proto = IPPROTO_TCP, .dport = 443});
  deny(a_, METRIC_INGRESS, {.peer_identity = IDENTITY_WORLD, .proto = IPPROTO_TCP, .dport = 443});
  struct Case {
    const char* saddr;
    uint16_t dport;
    uint32_t verdict;
  };
  const std::vector<Case> cases = {
      {POD_B_IP, 80, TC_ACT_OK},          // allowed by identity
      {POD_B_IP, 81, TC_ACT_SHOT},        // default deny
      {OTHER_WORLD_IP, 80, TC_ACT_SHOT},  // world: no rule
      {POD_B_IP, 443, TC_ACT_OK},         // any identity on 443
      {IN_CIDR_IP, 443, TC_ACT_SHOT},     // world denied on 443
  };
  auto verdicts = [&](uint16_t first_sport) {
    std::vector<uint32_t> out;
    for (size_t i = 0; i < cases.size(); i++)
      out.push_back(syn_to_a(cases[i].saddr, static_cast<uint16_t>(first_sport + i), cases[i].dport));
    return out;
  };

  ASSERT_EQ(datapath().policy_cidrs().count(), 0u);
  std::vector<uint32_t> without = verdicts(41000);
  policy_cidr("192.0.2.0", 24, UNRELATED_CIDR_IDENTITY);
  std::vector<uint32_t> with = verdicts(42000);
  for (size_t i = 0; i < cases.size(); i++) {
    EXPECT_EQ(without[i], cases[i].verdict) << cases[i].saddr << ":" << cases[i].dport << " without CIDR policy";
    EXPECT_EQ(with[i], cases[i].verdict) << cases[i].saddr << ":" << cases[i].dport << " with an unrelated CIDR";
  }
}

}  // namespace
}  // namespace pilus::test
