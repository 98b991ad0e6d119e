// Pods reach each other and the node over ICMP, TCP and UDP; nothing gets past the node.
#include <gmock/gmock.h>

#include <thread>

#include "e2e/outside_host.h"
#include "e2e/scenario.h"

namespace pilus::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Connectivity = PodNetworkTest;

TEST_F(Connectivity, ThreePodsReachEachOtherBothWaysOverIcmpTcpAndUdp) {
  create_pods({server_pod("alpha"), server_pod("beta"), server_pod("gamma")});

  for (const char* from : {"alpha", "beta", "gamma"}) {
    for (const char* to : {"alpha", "beta", "gamma"}) {
      if (std::string(from) == to) continue;
      expect_ping(pod(from), pod(to));
      expect_reachable(pod(from), pod(to), kTcpPort, "tcp");
      expect_reachable(pod(from), pod(to), kUdpPort, "udp");
    }
  }
}

TEST_F(Connectivity, PodToPodCostsOneHopAndTheLastHopIsDropped) {
  create_pods({server_pod("alpha"), server_pod("beta")});
  // beta's echo reply leaves with TTL 64 and reaches alpha one router hop later.
  CommandResult r = run_at(pod("alpha"), {"ping", "-n", "-c", "1", "-W", "3", pod("beta").ip});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("ttl=63")) << r.out;
  // With TTL 1 there is no hop left: dropped at alpha's veth and counted.
  CommandResult last = run_at(pod("alpha"), {"ping", "-n", "-c", "1", "-W", "1", "-t", "1", pod("beta").ip});
  EXPECT_FALSE(last.ok()) << last.describe();
  EXPECT_EQ(datapath_packets("alpha", "TTL_EXCEEDED", "egress"), 1u);
}

TEST_F(Connectivity, PodsReachTheNodeAtTheRouterAddressAndTheNodeReachesPods) {
  create_pods({server_pod("alpha"), server_pod("beta"), server_pod("gamma")});
  // The node's address for its pods is the first one of the pod CIDR.
  auto status = nlohmann::json::parse(agent().pilus({"status", "-o", "json"}).out);
  ASSERT_EQ(status["routerIP"], agent().router_ip()) << "pod CIDR " << agent().pod_cidr();
  HostServer node_server(agent().router_ip(), kNodePort, "node");

  for (const char* name : {"alpha", "beta", "gamma"}) {
    expect_ping(pod(name), node());
    expect_reachable(pod(name), node(), kNodePort, "tcp");
    expect_reachable(pod(name), node(), kNodePort, "udp");

    expect_ping(node(), pod(name));
    expect_reachable(node(), pod(name), kTcpPort, "tcp");
    expect_reachable(node(), pod(name), kUdpPort, "udp");
  }
}

TEST_F(Connectivity, NothingLeavesTheNodeTrafficToTheOutsideIsDroppedAndCounted) {
  create_pods({server_pod("alpha")});
  // A host the node itself reaches over a link of its own: only pods are kept in.
  OutsideHost world(kTcpPort, kUdpPort);
  Peer outside{world.name(), world.ip(), world.netns()};
  expect_reachable(node(), outside, kTcpPort, "tcp");
  uint64_t dropped_before = datapath_packets("alpha", "NO_ROUTE_TO_OUTSIDE", "egress");

  expect_no_ping(pod("alpha"), outside);
  expect_unreachable(pod("alpha"), outside, kTcpPort, "tcp");
  expect_unreachable(pod("alpha"), outside, kUdpPort, "udp");

  // The datapath's own count is the evidence that the packets died there,
  // rather than being handed to the node's stack: one echo request, at least
  // one SYN and one datagram.
  EXPECT_GE(datapath_packets("alpha", "NO_ROUTE_TO_OUTSIDE", "egress"), dropped_before + 3)
      << agent().bpf_endpoints().dump();
  // Dropped before conntrack: no flow towards the outside was ever tracked.
  for (const auto& flow : agent().bpf_conntrack())
    EXPECT_THAT(flow["destination"].get<std::string>(), Not(HasSubstr(world.ip()))) << flow.dump();
  // The pod itself is still fine.
  expect_ping(pod("alpha"), node());
}

// A pod with CAP_NET_RAW can send any frame: one that ends inside the IPv4 header
// is dropped by from_pod's bounds checks (bpf/lib/parse.h) and counted with its reason.
// (BPF_PROG_TEST_RUN on this kernel refuses such frames, so only real traffic covers it.)
TEST_F(Connectivity, FramesEndingInsideTheIpv4HeaderAreDroppedAndCounted) {
  create_pods({server_pod("alpha"), server_pod("beta")});
  // Dropped before the sender is known: counted under endpoint 0.
  auto truncated_drops = [&] { return agent().counted_packets("CT_TRUNCATED_OR_INVALID_HEADER"); };
  const uint64_t before = truncated_drops();
  // An EtherType IPv4 frame with no header at all, and one cut a byte short of 20.
  for (const char* ip_bytes : {"0", "19"}) {
    CommandResult r = run_at(pod("alpha"), {netprobe_bin(), "rawframe", "eth0", "--ip-bytes", ip_bytes, "--count", "3"});
    ASSERT_TRUE(r.ok()) << r.describe();
  }
  uint64_t after = before;
  wait_until([&] { return (after = truncated_drops()) >= before + 6; });
  EXPECT_EQ(after, before + 6) << agent().bpf_endpoints().dump();
  // The sender's veth keeps working.
  expect_reachable(pod("alpha"), pod("beta"), kTcpPort, "tcp");
}

}  // namespace
}  // namespace pilus::e2e
