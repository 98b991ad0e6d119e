// Service translation on the per-packet path (from_pod DNAT, to_pod reverse
// NAT) under BPF_PROG_TEST_RUN, with the LB maps written by the agent's own
// ServiceMaps: output bytes and checksums, stickiness, spreading, the drop
// when a service has no backend, and reverse entries that no longer hold.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "abi/conntrack.h"
#include "abi/drop_reasons.h"
#include "abi/events.h"
#include "abi/metrics.h"
#include "datapath_fixture.h"
#include "packet_builder.h"
#include "service/service_maps.h"

namespace pilus::test {
namespace {

using namespace tcp_flag;

constexpr const char* CLIENT_IP = "10.0.1.10";
constexpr const char* VIP = "10.96.0.10";
constexpr uint16_t VIP_PORT = 80;
constexpr uint16_t TARGET_PORT = 8080;
const char* const BACKEND_IPS[] = {"10.0.1.21", "10.0.1.22", "10.0.1.23"};
constexpr uint16_t CLIENT_ENDPOINT = 11;
constexpr int NOT_A_DEVICE = 0x7ffffff0;

endpoint::Ipv4 ip(const char* text) { return endpoint::Ipv4::from_network_order(ipv4_address(text)); }

// What a frame says once parsed back: addresses, ports and whether both checksums hold.
struct Seen {
  std::string saddr, daddr;
  uint16_t sport = 0, dport = 0;
  bool ip_checksum_ok = false, l4_checksum_ok = false;
};

std::string dotted(const uint8_t* p) {
  return std::to_string(p[0]) + "." + std::to_string(p[1]) + "." + std::to_string(p[2]) + "." + std::to_string(p[3]);
}

Seen parse(const std::vector<uint8_t>& f) {
  Seen s;
  const size_t ip_off = 14, ihl = (f[ip_off] & 0xf) * 4u, l4 = ip_off + ihl;
  s.saddr = dotted(&f[ip_off + 12]);
  s.daddr = dotted(&f[ip_off + 16]);
  s.sport = uint16_t(f[l4] << 8 | f[l4 + 1]);
  s.dport = uint16_t(f[l4 + 2] << 8 | f[l4 + 3]);
  s.ip_checksum_ok = internet_checksum(f, ip_off, ihl) == 0;
  size_t l4_len = f.size() - l4;
  std::vector<uint8_t> pseudo(f.begin() + ip_off + 12, f.begin() + ip_off + 20);
  pseudo.push_back(0);
  pseudo.push_back(f[ip_off + 9]);
  pseudo.push_back(uint8_t(l4_len >> 8));
  pseudo.push_back(uint8_t(l4_len));
  pseudo.insert(pseudo.end(), f.begin() + l4, f.end());
  s.l4_checksum_ok = internet_checksum(pseudo) == 0;
  return s;
}

class ServiceDatapathTest : public DatapathTest {
 protected:
  datapath::DatapathConfig datapath_config() const override { return {.pin = false, .maglev_size = 251}; }

  void SetUp() override {
    DatapathTest::SetUp();
    client_ = add_local_pod(CLIENT_IP, LOOPBACK_IFINDEX, 1000, CLIENT_ENDPOINT);
    int b_if = second_device_ifindex().value_or(NOT_A_DEVICE);
    uint16_t id = 21;
    for (const char* b : BACKEND_IPS) add_local_pod(b, b_if, 2000, id++);
    maps_ = std::make_unique<service::ServiceMaps>(datapath());
  }

  // A service (VIP:80 -> backends:8080) as the agent writes it.
  void service_with_backends(uint8_t proto, size_t count) {
    service::Frontend f;
    f.service = "default/web";
    f.vip = ip(VIP);
    f.port = VIP_PORT;
    f.proto = proto;
    for (size_t i = 0; i < count; i++)
      f.backends.push_back({"default/web-" + std::to_string(i), ip(BACKEND_IPS[i]), TARGET_PORT});
    maps_->sync({f}, {});
  }

  std::vector<uint8_t> syn_to_vip(uint16_t sport) const {
    return client_.send_to(VIP).tcp(sport, VIP_PORT, SYN).payload("hello").build();
  }

  Pod client_;
  std::unique_ptr<service::ServiceMaps> maps_;
};

TEST_F(ServiceDatapathTest, ConnectionToTheVipGoesToABackendWithValidChecksums) {
  service_with_backends(IPPROTO_TCP, 1);
  RunResult r = run_from_pod(syn_to_vip(40000), LOOPBACK_IFINDEX);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  Seen s = parse(r.output);
  EXPECT_EQ(s.saddr, CLIENT_IP);
  EXPECT_EQ(s.daddr, BACKEND_IPS[0]);
  EXPECT_EQ(s.sport, 40000);
  EXPECT_EQ(s.dport, TARGET_PORT);
  EXPECT_TRUE(s.ip_checksum_ok);
  EXPECT_TRUE(s.l4_checksum_ok);
  // Conntrack (and so policy) sees the backend, as in Cilium.
  EXPECT_TRUE(ct_entry_for({CLIENT_IP, BACKEND_IPS[0], 40000, TARGET_PORT, IPPROTO_TCP}, CT_EGRESS).has_value());
  EXPECT_EQ(counter(CLIENT_ENDPOINT, REASON_FORWARDED, METRIC_EGRESS).packets, 1u);
}

TEST_F(ServiceDatapathTest, ReplyFromTheBackendComesBackFromTheVip) {
  service_with_backends(IPPROTO_TCP, 1);
  ASSERT_EQ(run_from_pod(syn_to_vip(40001), LOOPBACK_IFINDEX).verdict, uint32_t(TC_ACT_REDIRECT));
  auto reply = client_.receive_from(BACKEND_IPS[0]).tcp(TARGET_PORT, 40001, SYN | ACK).payload("world").build();
  RunResult r = run_to_pod(reply, LOOPBACK_IFINDEX);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  Seen s = parse(r.output);
  EXPECT_EQ(s.saddr, VIP);
  EXPECT_EQ(s.sport, VIP_PORT);
  EXPECT_EQ(s.daddr, CLIENT_IP);
  EXPECT_EQ(s.dport, 40001);
  EXPECT_TRUE(s.ip_checksum_ok);
  EXPECT_TRUE(s.l4_checksum_ok);
}

// A client reuses a source port at once after a RST; a connection straight to the backend
// on the ports a translated one used must not get its replies rewritten to the VIP's.
TEST_F(ServiceDatapathTest, DirectConnectionOnATranslatedOnesPortsKeepsTheBackendsAddress) {
  service_with_backends(IPPROTO_TCP, 1);
  ASSERT_EQ(run_from_pod(syn_to_vip(40002), LOOPBACK_IFINDEX).verdict, uint32_t(TC_ACT_REDIRECT));
  auto direct = client_.send_to(BACKEND_IPS[0]).tcp(40002, TARGET_PORT, SYN).build();
  ASSERT_EQ(run_from_pod(direct, LOOPBACK_IFINDEX).verdict, uint32_t(TC_ACT_REDIRECT));
  auto reply = client_.receive_from(BACKEND_IPS[0]).tcp(TARGET_PORT, 40002, SYN | ACK).build();
  RunResult r = run_to_pod(reply, LOOPBACK_IFINDEX);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_OK));
  Seen s = parse(r.output);
  EXPECT_EQ(s.saddr, BACKEND_IPS[0]);
  EXPECT_EQ(s.sport, TARGET_PORT);
  // And the next connection to the VIP from that port is translated both ways again.
  ASSERT_EQ(run_from_pod(syn_to_vip(40002), LOOPBACK_IFINDEX).verdict, uint32_t(TC_ACT_REDIRECT));
  Seen back = parse(run_to_pod(reply, LOOPBACK_IFINDEX).output);
  EXPECT_EQ(back.saddr, VIP);
  EXPECT_EQ(back.sport, VIP_PORT);
}

TEST_F(ServiceDatapathTest, UdpIsTranslatedBothWays) {
  service_with_backends(IPPROTO_UDP, 1);
  RunResult out = run_from_pod(client_.send_to(VIP).udp(5353, VIP_PORT).payload("q").build(), LOOPBACK_IFINDEX);
  EXPECT_EQ(out.verdict, uint32_t(TC_ACT_REDIRECT));
  Seen s = parse(out.output);
  EXPECT_EQ(s.daddr, BACKEND_IPS[0]);
  EXPECT_EQ(s.dport, TARGET_PORT);
  EXPECT_TRUE(s.l4_checksum_ok);
  RunResult back =
      run_to_pod(client_.receive_from(BACKEND_IPS[0]).udp(TARGET_PORT, 5353).payload("a").build(), LOOPBACK_IFINDEX);
  Seen b = parse(back.output);
  EXPECT_EQ(b.saddr, VIP);
  EXPECT_EQ(b.sport, VIP_PORT);
  EXPECT_TRUE(b.l4_checksum_ok);
}

TEST_F(ServiceDatapathTest, EveryPacketOfAConnectionGoesToTheSameBackend) {
  service_with_backends(IPPROTO_TCP, 3);
  std::string first = parse(run_from_pod(syn_to_vip(41000), LOOPBACK_IFINDEX).output).daddr;
  for (int i = 0; i < 5; i++) {
    auto ack = client_.send_to(VIP).tcp(41000, VIP_PORT, ACK).payload("x").build();
    EXPECT_EQ(parse(run_from_pod(ack, LOOPBACK_IFINDEX).output).daddr, first);
  }
}

// 300 connections over 3 backends: each gets a fair share. Bound: at least
// 20% each (a fair share is 33%; the 5-tuple hash is not perfectly uniform).
TEST_F(ServiceDatapathTest, ConnectionsSpreadOverAllBackends) {
  service_with_backends(IPPROTO_TCP, 3);
  std::map<std::string, int> per_backend;
  const int connections = 300;
  for (int i = 0; i < connections; i++)
    per_backend[parse(run_from_pod(syn_to_vip(uint16_t(42000 + i)), LOOPBACK_IFINDEX).output).daddr]++;
  ASSERT_EQ(per_backend.size(), 3u);
  for (const auto& [backend, n] : per_backend) {
    RecordProperty("connections_" + backend, n);
    EXPECT_GE(n, connections / 5) << backend;
  }
}

// The service's Maglev row as the datapath reads it: slot -> the backend's address.
std::vector<std::string> maglev_row(const datapath::Datapath& dp, uint32_t size) {
  auto services = dp.lb_services().keys();
  if (services.size() != 1) throw std::runtime_error("expected one service, found " + std::to_string(services.size()));
  uint32_t row = dp.lb_services().lookup(services[0])->service_id;
  auto maglev = dp.lb_maglev();
  auto backends = dp.lb_backends();
  std::vector<std::string> out;
  for (uint32_t slot = 0; slot < size; slot++) {
    uint32_t id = maglev.lookup(row * size + slot).value_or(0);
    auto b = backends.lookup(id);
    out.push_back(b ? dotted(reinterpret_cast<const uint8_t*>(&b->ip)) : std::string("(none)"));
  }
  return out;
}

// Removing a backend rewrites the row: the removed one's slots go to the survivors, and the
// survivors keep their own slots, all but a few (Maglev's minimal disruption: its paper reports a
// few percent; bound here 10% of the survivors' slots, as seen in the maps the datapath reads).
// New connections hashed to a survivor go there again, but for those few. A restarted agent
// rewriting the row with the same backends changes no slot at all.
TEST_F(ServiceDatapathTest, SurvivingBackendsKeepAlmostAllTheirSlotsWhenTheMapsAreRewritten) {
  constexpr uint32_t kSize = 251;
  service_with_backends(IPPROTO_TCP, 3);
  std::vector<std::string> before = maglev_row(datapath(), kSize);
  std::map<uint16_t, std::string> chosen;
  for (uint16_t sport = 44000; sport < 44300; sport++)
    chosen[sport] = parse(run_from_pod(syn_to_vip(sport), LOOPBACK_IFINDEX).output).daddr;

  service_with_backends(IPPROTO_TCP, 2);  // BACKEND_IPS[2] leaves
  std::vector<std::string> after = maglev_row(datapath(), kSize);
  size_t survivors_slots = 0, changed_hands = 0, freed = 0;
  for (uint32_t slot = 0; slot < kSize; slot++) {
    ASSERT_NE(after[slot], BACKEND_IPS[2]) << "slot " << slot;
    ASSERT_NE(after[slot], "(none)") << "slot " << slot;
    if (before[slot] == BACKEND_IPS[2]) {
      freed++;
    } else {
      survivors_slots++;
      if (after[slot] != before[slot]) changed_hands++;
    }
  }
  ASSERT_GT(freed, 0u);
  ASSERT_GT(survivors_slots, 0u);
  RecordProperty("survivor_slots_changed", std::to_string(changed_hands) + "/" + std::to_string(survivors_slots));
  EXPECT_LE(changed_hands * 10, survivors_slots) << changed_hands << " of the survivors' " << survivors_slots << " slots moved";

  // The same tuples, as new connections (conntrack emptied): those that went to a survivor mostly go there again.
  auto ct = datapath().conntrack();
  for (const ct_key& k : ct.keys()) ct.erase(k);
  size_t to_survivor = 0, same = 0;
  for (const auto& [sport, daddr] : chosen) {
    if (daddr == BACKEND_IPS[2]) continue;
    to_survivor++;
    if (parse(run_from_pod(syn_to_vip(sport), LOOPBACK_IFINDEX).output).daddr == daddr) same++;
  }
  ASSERT_GT(to_survivor, 0u);
  EXPECT_GE(same * 10, to_survivor * 9) << same << " of " << to_survivor << " kept their backend";

  // Rewritten with the same backends by a restarted agent's ServiceMaps: the row is unchanged.
  maps_ = std::make_unique<service::ServiceMaps>(datapath());
  service_with_backends(IPPROTO_TCP, 2);
  EXPECT_EQ(maglev_row(datapath(), kSize), after);
}

// Per-packet connections established while the service had two backends keep theirs after a
// third is added (conntrack holds the choice), while new connections do reach the new one.
TEST_F(ServiceDatapathTest, EstablishedConnectionsKeepTheirBackendWhenOneIsAdded) {
  service_with_backends(IPPROTO_TCP, 2);
  std::map<uint16_t, std::string> chosen;
  for (uint16_t sport = 45000; sport < 45100; sport++)
    chosen[sport] = parse(run_from_pod(syn_to_vip(sport), LOOPBACK_IFINDEX).output).daddr;

  service_with_backends(IPPROTO_TCP, 3);  // BACKEND_IPS[2] joins
  ASSERT_EQ(chosen.size(), 100u);
  for (const auto& [sport, daddr] : chosen) {
    auto ack = client_.send_to(VIP).tcp(sport, VIP_PORT, ACK).payload("more").build();
    EXPECT_EQ(parse(run_from_pod(ack, LOOPBACK_IFINDEX).output).daddr, daddr) << "port " << sport;
  }
  size_t to_new = 0;
  for (uint16_t sport = 46000; sport < 46100; sport++)
    if (parse(run_from_pod(syn_to_vip(sport), LOOPBACK_IFINDEX).output).daddr == BACKEND_IPS[2]) to_new++;
  EXPECT_GT(to_new, 0u) << "the added backend must get new connections";
}

TEST_F(ServiceDatapathTest, RemovedBackendGetsNoNewConnection) {
  service_with_backends(IPPROTO_TCP, 3);
  service_with_backends(IPPROTO_TCP, 2);  // BACKEND_IPS[2] removed
  for (int i = 0; i < 100; i++)
    EXPECT_NE(parse(run_from_pod(syn_to_vip(uint16_t(43000 + i)), LOOPBACK_IFINDEX).output).daddr, BACKEND_IPS[2]);
}

// No backend: the SYN is counted and reported as a drop, and the client gets
// a RST from the VIP at once instead of waiting for a timeout.
TEST_F(ServiceDatapathTest, SynToAServiceWithoutBackendGetsARstFromTheVip) {
  service_with_backends(IPPROTO_TCP, 0);
  drain_events();
  RunResult r = run_from_pod(syn_to_vip(44000), LOOPBACK_IFINDEX);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  EXPECT_EQ(counter(CLIENT_ENDPOINT, DROP_SERVICE_BACKEND_NOT_FOUND, METRIC_EGRESS).packets, 1u);
  auto events = drain_events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, EVENT_DROP);
  EXPECT_EQ(events.back().reason, DROP_SERVICE_BACKEND_NOT_FOUND);

  ASSERT_EQ(r.output.size(), 54u);  // Ethernet, IPv4, TCP: no options, no data
  Seen s = parse(r.output);
  EXPECT_EQ(s.saddr, VIP);
  EXPECT_EQ(s.sport, VIP_PORT);
  EXPECT_EQ(s.daddr, CLIENT_IP);
  EXPECT_EQ(s.dport, 44000);
  EXPECT_TRUE(s.ip_checksum_ok);
  EXPECT_TRUE(s.l4_checksum_ok);
  EXPECT_EQ(r.output[14 + 20 + 13], RST | ACK);
  EXPECT_TRUE(std::equal(client_.pod_mac.begin(), client_.pod_mac.end(), r.output.begin())) << "sent back to the pod";
  // ack = the SYN's sequence number (the builder's) + 1 for the SYN + 5 bytes of data.
  auto seq = [](const std::vector<uint8_t>& f, size_t at) {
    return uint32_t(f[at]) << 24 | uint32_t(f[at + 1]) << 16 | uint32_t(f[at + 2]) << 8 | f[at + 3];
  };
  EXPECT_EQ(seq(r.output, 14 + 20 + 8), seq(syn_to_vip(44000), 14 + 20 + 4) + 1 + 5);
}

// No backend for UDP: counted and reported as a drop, and answered with the ICMP port unreachable
// a host without the port would send, from the VIP, quoting the datagram's headers.
TEST_F(ServiceDatapathTest, UdpToAServiceWithoutBackendGetsIcmpPortUnreachableFromTheVip) {
  service_with_backends(IPPROTO_UDP, 0);
  const std::vector<uint8_t> datagram = client_.send_to(VIP).udp(5353, VIP_PORT).payload("q").build();
  RunResult r = run_from_pod(datagram, LOOPBACK_IFINDEX);
  EXPECT_EQ(r.verdict, uint32_t(TC_ACT_REDIRECT));
  EXPECT_EQ(counter(CLIENT_ENDPOINT, DROP_SERVICE_BACKEND_NOT_FOUND, METRIC_EGRESS).packets, 1u);

  ASSERT_EQ(r.output.size(), 14u + 20 + 8 + 20 + 8);  // Ethernet, IPv4, ICMP, quoted IPv4 + UDP headers
  EXPECT_TRUE(std::equal(client_.pod_mac.begin(), client_.pod_mac.end(), r.output.begin())) << "sent back to the pod";
  auto sum16 = [&](size_t from, size_t to) {
    uint32_t sum = 0;
    for (size_t i = from; i + 1 < to; i += 2) sum += uint32_t(r.output[i]) << 8 | r.output[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return sum;
  };
  EXPECT_EQ(sum16(14, 34), 0xffffu) << "IPv4 header checksum";
  EXPECT_EQ(r.output[14 + 9], IPPROTO_ICMP);
  Seen s = parse(r.output);
  EXPECT_EQ(s.saddr, VIP);
  EXPECT_EQ(s.daddr, CLIENT_IP);
  EXPECT_EQ(r.output[34], 3) << "destination unreachable";
  EXPECT_EQ(r.output[35], 3) << "port unreachable";
  EXPECT_EQ(sum16(34, r.output.size()), 0xffffu) << "ICMP checksum";
  EXPECT_TRUE(std::equal(datagram.begin() + 14, datagram.begin() + 14 + 28, r.output.begin() + 42))
      << "quotes the datagram's IPv4 header and first 8 bytes";
}

TEST_F(ServiceDatapathTest, OtherPortsOfTheVipAreNotAService) {
  service_with_backends(IPPROTO_TCP, 1);
  auto other = client_.send_to(VIP).tcp(45000, 81, SYN).build();
  EXPECT_EQ(run_from_pod(other, LOOPBACK_IFINDEX).verdict, uint32_t(TC_ACT_SHOT));
  EXPECT_EQ(counter(CLIENT_ENDPOINT, DROP_NO_ROUTE_OUTSIDE, METRIC_EGRESS).packets, 1u);
}

// lb_nat keys as the datapath writes them (network order).
lb_nat_key nat_key(const char* saddr, const char* daddr, uint16_t sport, uint16_t dport, uint8_t proto) {
  lb_nat_key k{};
  k.saddr = ipv4_address(saddr);
  k.daddr = ipv4_address(daddr);
  k.sport = htons(sport);
  k.dport = htons(dport);
  k.proto = proto;
  return k;
}

// A UDP flow to the VIP, then the client talks to the backend directly on the same ports
// once the forward entry is gone (evicted): the backend's replies keep the backend's address,
// and the stale reverse entry goes.
TEST_F(ServiceDatapathTest, DirectUdpOnAServiceFlowsPortsIsNotRewrittenOnceTheForwardEntryIsGone) {
  service_with_backends(IPPROTO_UDP, 1);
  ASSERT_EQ(parse(run_from_pod(client_.send_to(VIP).udp(5400, VIP_PORT).build(), LOOPBACK_IFINDEX).output).daddr,
            BACKEND_IPS[0]);
  auto reverse = nat_key(BACKEND_IPS[0], CLIENT_IP, TARGET_PORT, 5400, IPPROTO_UDP);
  ASSERT_TRUE(datapath().lb_nat().lookup(reverse).has_value());
  ASSERT_TRUE(datapath().lb_nat().erase(nat_key(CLIENT_IP, VIP, 5400, VIP_PORT, IPPROTO_UDP)));

  RunResult direct = run_from_pod(client_.send_to(BACKEND_IPS[0]).udp(5400, TARGET_PORT).build(), LOOPBACK_IFINDEX);
  ASSERT_EQ(direct.verdict, uint32_t(TC_ACT_REDIRECT));
  EXPECT_EQ(parse(direct.output).daddr, BACKEND_IPS[0]);
  RunResult reply =
      run_to_pod(client_.receive_from(BACKEND_IPS[0]).udp(TARGET_PORT, 5400).payload("a").build(), LOOPBACK_IFINDEX);
  EXPECT_EQ(reply.verdict, uint32_t(TC_ACT_OK));
  Seen s = parse(reply.output);
  EXPECT_EQ(s.saddr, BACKEND_IPS[0]);
  EXPECT_EQ(s.sport, TARGET_PORT);
  EXPECT_TRUE(s.l4_checksum_ok);
  EXPECT_FALSE(datapath().lb_nat().lookup(reverse).has_value()) << "the stale reverse entry is deleted";
}

// The client's port to the VIP now maps to another backend (the first was removed): a
// direct datagram to the first backend on the old ports is answered from that backend.
TEST_F(ServiceDatapathTest, DirectUdpIsNotRewrittenWhenTheForwardEntryNamesAnotherBackend) {
  auto frontend = [&](std::vector<size_t> backends) {
    service::Frontend f;
    f.service = "default/dns";
    f.vip = ip(VIP);
    f.port = VIP_PORT;
    f.proto = IPPROTO_UDP;
    for (size_t i : backends) f.backends.push_back({"default/dns-" + std::to_string(i), ip(BACKEND_IPS[i]), TARGET_PORT});
    maps_->sync({f}, {});
  };
  frontend({0});
  ASSERT_EQ(parse(run_from_pod(client_.send_to(VIP).udp(5401, VIP_PORT).build(), LOOPBACK_IFINDEX).output).daddr,
            BACKEND_IPS[0]);
  frontend({1});
  ASSERT_EQ(parse(run_from_pod(client_.send_to(VIP).udp(5401, VIP_PORT).build(), LOOPBACK_IFINDEX).output).daddr,
            BACKEND_IPS[1]);

  run_from_pod(client_.send_to(BACKEND_IPS[0]).udp(5401, TARGET_PORT).build(), LOOPBACK_IFINDEX);
  Seen old = parse(
      run_to_pod(client_.receive_from(BACKEND_IPS[0]).udp(TARGET_PORT, 5401).build(), LOOPBACK_IFINDEX).output);
  EXPECT_EQ(old.saddr, BACKEND_IPS[0]);
  EXPECT_EQ(old.sport, TARGET_PORT);
  // The live flow's replies still come from the VIP.
  Seen live = parse(
      run_to_pod(client_.receive_from(BACKEND_IPS[1]).udp(TARGET_PORT, 5401).build(), LOOPBACK_IFINDEX).output);
  EXPECT_EQ(live.saddr, VIP);
  EXPECT_EQ(live.sport, VIP_PORT);
}

// UDP has no end: a flow to the VIP that sent nothing for the UDP conntrack lifetime is over,
// so a reply on its ports is not rewritten; a new datagram to the VIP brings it back.
TEST_F(ServiceDatapathTest, UdpServiceFlowIdleForAConntrackLifetimeNoLongerRewritesReplies) {
  service_with_backends(IPPROTO_UDP, 1);
  ASSERT_EQ(run_from_pod(client_.send_to(VIP).udp(5402, VIP_PORT).build(), LOOPBACK_IFINDEX).verdict,
            uint32_t(TC_ACT_REDIRECT));
  auto forward = nat_key(CLIENT_IP, VIP, 5402, VIP_PORT, IPPROTO_UDP);
  std::optional<lb_nat_value> chosen = datapath().lb_nat().lookup(forward);
  ASSERT_TRUE(chosen.has_value());
  EXPECT_GE(chosen->last_used + 1, mono_seconds());
  chosen->last_used = mono_seconds() - CT_LIFETIME_NONTCP - 2;
  datapath().lb_nat().update(forward, *chosen);

  auto reply = client_.receive_from(BACKEND_IPS[0]).udp(TARGET_PORT, 5402).payload("a").build();
  Seen stale = parse(run_to_pod(reply, LOOPBACK_IFINDEX).output);
  EXPECT_EQ(stale.saddr, BACKEND_IPS[0]);
  EXPECT_FALSE(datapath().lb_nat().lookup(nat_key(BACKEND_IPS[0], CLIENT_IP, TARGET_PORT, 5402, IPPROTO_UDP)));

  ASSERT_EQ(parse(run_from_pod(client_.send_to(VIP).udp(5402, VIP_PORT).build(), LOOPBACK_IFINDEX).output).daddr,
            BACKEND_IPS[0]);
  Seen again = parse(run_to_pod(reply, LOOPBACK_IFINDEX).output);
  EXPECT_EQ(again.saddr, VIP);
  EXPECT_EQ(again.sport, VIP_PORT);
  EXPECT_TRUE(again.l4_checksum_ok);
}

// The normal reply path, many packets each way, TCP and UDP: every reply keeps getting the VIP.
TEST_F(ServiceDatapathTest, EveryReplyOfALiveServiceFlowComesFromTheVip) {
  for (uint8_t proto : {uint8_t(IPPROTO_TCP), uint8_t(IPPROTO_UDP)}) {
    service_with_backends(proto, 1);
    for (int i = 0; i < 3; i++) {
      auto out = proto == IPPROTO_TCP
                     ? client_.send_to(VIP).tcp(5403, VIP_PORT, i == 0 ? SYN : ACK).build()
                     : client_.send_to(VIP).udp(5403, VIP_PORT).payload("q").build();
      ASSERT_EQ(parse(run_from_pod(out, LOOPBACK_IFINDEX).output).daddr, BACKEND_IPS[0]);
      auto back = proto == IPPROTO_TCP
                      ? client_.receive_from(BACKEND_IPS[0]).tcp(TARGET_PORT, 5403, i == 0 ? SYN | ACK : ACK).build()
                      : client_.receive_from(BACKEND_IPS[0]).udp(TARGET_PORT, 5403).payload("a").build();
      Seen s = parse(run_to_pod(back, LOOPBACK_IFINDEX).output);
      EXPECT_EQ(s.saddr, VIP) << int(proto) << " packet " << i;
      EXPECT_EQ(s.sport, VIP_PORT);
      EXPECT_TRUE(s.l4_checksum_ok);
    }
  }
}

// --lb-algorithm random: a random Maglev slot per new connection, still one
// backend for the whole connection.
class RandomServiceDatapathTest : public ServiceDatapathTest {
 protected:
  datapath::DatapathConfig datapath_config() const override {
    return {.pin = false, .maglev_size = 251, .lb_random = true};
  }
};

TEST_F(RandomServiceDatapathTest, SpreadsNewConnectionsAndKeepsEachOnOneBackend) {
  service_with_backends(IPPROTO_TCP, 3);
  std::map<std::string, int> per_backend;
  for (int i = 0; i < 150; i++) {
    std::string first = parse(run_from_pod(syn_to_vip(uint16_t(46000 + i)), LOOPBACK_IFINDEX).output).daddr;
    auto ack = client_.send_to(VIP).tcp(uint16_t(46000 + i), VIP_PORT, ACK).build();
    EXPECT_EQ(parse(run_from_pod(ack, LOOPBACK_IFINDEX).output).daddr, first);
    per_backend[first]++;
  }
  EXPECT_EQ(per_backend.size(), 3u);
  for (const auto& [backend, n] : per_backend) EXPECT_GE(n, 20) << backend;
}

// sessionAffinity: ClientIP on the per-packet path: every connection of a
// client goes to the backend its first one got.
TEST_F(ServiceDatapathTest, ClientIpAffinityPinsTheClientsConnections) {
  service::Frontend f;
  f.service = "default/sticky";
  f.vip = ip(VIP);
  f.port = VIP_PORT;
  f.proto = IPPROTO_TCP;
  f.client_ip_affinity = true;
  f.affinity_timeout_s = 600;
  for (size_t i = 0; i < 3; i++)
    f.backends.push_back({"default/web-" + std::to_string(i), ip(BACKEND_IPS[i]), TARGET_PORT});
  maps_->sync({f}, {});
  std::set<std::string> chosen;
  for (int i = 0; i < 30; i++) chosen.insert(parse(run_from_pod(syn_to_vip(uint16_t(47000 + i)), LOOPBACK_IFINDEX).output).daddr);
  EXPECT_EQ(chosen.size(), 1u);
}

}  // namespace
}  // namespace pilus::test
