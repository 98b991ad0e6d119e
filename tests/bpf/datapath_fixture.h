// gtest fixture over a private (unpinned) Datapath: seeds its maps by intent, runs the pod programs with BPF_PROG_TEST_RUN.
#pragma once

#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "abi/conntrack.h"
#include "abi/events.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "common/error.h"
#include "datapath/datapath.h"
#include "packet_builder.h"

namespace pilus::test {

// A pod as the fixture seeded it into the endpoints map and the ipcache.
struct Pod {
  std::string ip;
  int ifindex = 0;  // host side of its veth
  uint32_t identity = 0;
  uint16_t endpoint_id = 0;
  Mac pod_mac{};   // eth0 inside the pod
  Mac host_mac{};  // host side of the veth

  // A frame the pod sends out of eth0 (what from_pod sees on its veth).
  PacketBuilder send_to(std::string_view daddr) const;
  // A frame delivered to the pod (what to_pod sees on its veth).
  PacketBuilder receive_from(std::string_view saddr) const;
};

// A connection's tuple as a test names it; ports in host order, and for ICMP
// echo the echo id in both ports.
struct Tuple {
  std::string saddr;
  std::string daddr;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t proto = 0;

  Tuple reversed() const { return {daddr, saddr, dport, sport, proto}; }
};

// BPF_PROG_TEST_RUN refused the frame before the program saw it (errno kept).
class TestRunRefused : public pilus::Error {
 public:
  TestRunRefused(const std::string& message, int error) : pilus::Error(message), error(error) {}
  int error;
};

// What a policy entry matches, beyond the pod and direction it belongs to.
struct PolicyMatch {
  uint32_t peer_identity = 0;   // 0: any identity
  std::optional<uint8_t> proto;  // nullopt: any protocol and port
  uint16_t dport = 0;            // host order
  uint8_t port_bits = 16;        // leading bits of dport that must match: 16 exact, 0 any port
  uint8_t peer_kind = POLICY_PEER_IDENTITY;  // POLICY_PEER_ENDPOINT: peer_identity is a destination endpoint id
  uint32_t rule_id = 0;                      // the reference drop events carry
};

struct RunResult {
  uint32_t verdict = 0;         // the program's return value (TC_ACT_*)
  std::vector<uint8_t> output;  // the frame as the program left it
};

class DatapathTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The configuration SetUp loads with; a derived fixture may change tunables.
  virtual datapath::DatapathConfig datapath_config() const { return {.pin = false}; }

  // Seeds the endpoints map and an ipcache /32 (IPCACHE_F_LOCAL_POD); MACs are
  // derived from the endpoint id so every pod's differ.
  Pod add_local_pod(std::string_view ip, int ifindex, uint32_t identity, uint16_t endpoint_id);
  // An address of this node: ipcache /32 with IDENTITY_HOST and IPCACHE_F_HOST.
  void add_host_address(std::string_view ip);

  // Policy as the agent writes it: a direction that some policy selects is
  // default deny (enforce_policy), then allow/deny entries per peer and port.
  // Like the agent, every helper that writes a map a verdict depends on bumps the
  // policy revision after its write (cached allows of known connections go stale).
  void enforce_policy(const Pod& pod, uint8_t dir);
  void allow(const Pod& pod, uint8_t dir, const PolicyMatch& match);
  void deny(const Pod& pod, uint8_t dir, const PolicyMatch& match);
  void revoke(const Pod& pod, uint8_t dir, const PolicyMatch& match);
  // The agent's record of which policies made a direction default deny (for drop events).
  void default_deny_ref(const Pod& pod, uint8_t dir, uint32_t ref);
  // ORs endpoint flags (e.g. ENDPOINT_F_EGRESS_PER_PEER) into the pod's endpoints entry.
  void add_endpoint_flags(const Pod& pod, uint16_t flags);

  // `repeat` > 1 runs the program that many times on the same frame in one
  // kernel call; the result is the last run's. Throws TestRunRefused when the
  // kernel refuses the run.
  RunResult run_from_pod(const std::vector<uint8_t>& packet, int ifindex, uint32_t repeat = 1) const;
  RunResult run_to_pod(const std::vector<uint8_t>& packet, int ifindex, uint32_t repeat = 1, uint32_t mark = 0) const;

  // Summed over CPUs; zero when the key was never counted.
  metrics_value counter(uint16_t endpoint_id, uint8_t reason, uint8_t dir) const;
  // Packets counted under any key: shows that nothing besides the expected counter moved.
  uint64_t all_counted_packets() const;

  std::optional<ct_entry> ct_entry_for(const Tuple& tuple, ct_scope scope) const;
  void put_ct_entry(const Tuple& tuple, ct_scope scope, const ct_entry& entry) const;
  size_t ct_entry_count() const;

  std::vector<flow_event> drain_events() const;
  uint64_t events_lost() const;

  // An existing network device other than loopback, for a second pod's veth:
  // test runs need a real device behind ctx ifindex. nullopt when there is none.
  static std::optional<int> second_device_ifindex();

  // Monotonic seconds, the clock CT lifetimes are written in.
  static uint32_t mono_seconds();

  datapath::Datapath& datapath() const { return *datapath_; }

 private:
  RunResult run(int prog_fd, const std::vector<uint8_t>& packet, int ifindex, uint32_t repeat, uint32_t mark = 0) const;

  std::unique_ptr<datapath::Datapath> datapath_;
};

// Loopback: the only device every test machine has, so the pod under test sits on it.
inline constexpr int LOOPBACK_IFINDEX = 1;

std::string describe(const flow_event& e);
std::string describe(const ct_entry& e);

}  // namespace pilus::test

// gtest prints ABI records through these (found by ADL in the global namespace).
void PrintTo(const flow_event& e, std::ostream* os);
void PrintTo(const ct_entry& e, std::ostream* os);
