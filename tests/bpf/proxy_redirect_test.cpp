// L7 redirection in the real pod programs: a SYN that a proxy-port policy entry covers is
// DNATed to the node's proxy and handed to the host stack, later packets of the connection
// follow it, the proxy's replies are reverse-NATed to come from the original server, and
// checksums stay valid both ways.
#include <arpa/inet.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <cstring>

#include "abi/metrics.h"
#include "abi/proxy.h"
#include "datapath_fixture.h"

namespace pilus::test {
namespace {

constexpr const char* CLIENT_IP = "10.0.2.10";
constexpr const char* SERVER_IP = "10.0.2.20";
constexpr const char* PROXY_IP = "10.0.2.1";  // the node's address on the pilus host device
constexpr uint32_t CLIENT_IDENTITY = 3000;
constexpr uint32_t SERVER_IDENTITY = 4000;
constexpr uint16_t CLIENT_ENDPOINT = 31;
constexpr uint16_t SERVER_ENDPOINT = 42;
constexpr uint16_t PROXY_PORT = 15001;
constexpr int SERVER_IFINDEX = 0x7ffffff0;  // never the device a run arrives on
constexpr size_t IP_OFF = 14;
constexpr size_t TCP_OFF = 34;

using namespace tcp_flag;

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (n & 1) sum += p[n - 1] << 8;
  return sum;
}
bool ip_checksum_ok(const std::vector<uint8_t>& f) { return fold(sum16(&f[IP_OFF], 20)) == 0xffff; }
bool tcp_checksum_ok(const std::vector<uint8_t>& f) {
  size_t tcp_len = f.size() - TCP_OFF;
  uint32_t sum = sum16(&f[IP_OFF + 12], 8);  // source and destination addresses
  sum += IPPROTO_TCP + static_cast<uint32_t>(tcp_len);
  return fold(sum16(&f[TCP_OFF], tcp_len, sum)) == 0xffff;
}
std::string daddr_of(const std::vector<uint8_t>& f) {
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &f[IP_OFF + 16], buf, sizeof(buf));
}
std::string saddr_of(const std::vector<uint8_t>& f) {
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &f[IP_OFF + 12], buf, sizeof(buf));
}
uint16_t sport_of(const std::vector<uint8_t>& f) { return static_cast<uint16_t>((f[TCP_OFF] << 8) | f[TCP_OFF + 1]); }
uint16_t dport_of(const std::vector<uint8_t>& f) { return static_cast<uint16_t>((f[TCP_OFF + 2] << 8) | f[TCP_OFF + 3]); }

class ProxyRedirectTest : public DatapathTest {
 protected:
  void SetUp() override {
    DatapathTest::SetUp();
    client_ = add_local_pod(CLIENT_IP, LOOPBACK_IFINDEX, CLIENT_IDENTITY, CLIENT_ENDPOINT);
    server_ = add_local_pod(SERVER_IP, SERVER_IFINDEX, SERVER_IDENTITY, SERVER_ENDPOINT);
    add_host_address(PROXY_IP);
    datapath().proxy_config().update(0, proxy_config{ipv4_address(PROXY_IP), 0});
    enforce_policy(server_, METRIC_INGRESS);
  }

  // The server's ingress entry for the client on 80/TCP, with or without the proxy.
  void server_allows_client_on_80(uint16_t proxy_port) {
    policy_key key{};
    key.prefixlen = POLICY_PREFIX_FULL;
    key.endpoint_id = SERVER_ENDPOINT;
    key.direction = METRIC_INGRESS;
    key.identity = CLIENT_IDENTITY;
    key.protocol = IPPROTO_TCP;
    key.dport = htons(80);
    policy_entry entry{};
    entry.proxy_port = htons(proxy_port);
    datapath().policy().update(key, entry);
  }

  RunResult client_sends(uint16_t sport, uint8_t flags) {
    return run_from_pod(client_.send_to(SERVER_IP).tcp(sport, 80, flags).payload("GET / HTTP/1.1\r\n\r\n").build(),
                        LOOPBACK_IFINDEX);
  }

  Pod client_, server_;
};

TEST_F(ProxyRedirectTest, SynCoveredByAProxyEntryIsDnatedToTheProxyWithTheOriginRecorded) {
  server_allows_client_on_80(PROXY_PORT);
  RunResult r = client_sends(40000, SYN);

  EXPECT_EQ(r.verdict, static_cast<uint32_t>(TC_ACT_OK)) << "handed to the host stack, where the proxy listens";
  EXPECT_EQ(daddr_of(r.output), PROXY_IP);
  EXPECT_EQ(dport_of(r.output), PROXY_PORT);
  EXPECT_EQ(saddr_of(r.output), CLIENT_IP);
  EXPECT_TRUE(ip_checksum_ok(r.output));
  EXPECT_TRUE(tcp_checksum_ok(r.output));

  auto origin = datapath().proxy_origin().lookup({ipv4_address(CLIENT_IP), htons(40000), htons(PROXY_PORT)});
  ASSERT_TRUE(origin.has_value());
  EXPECT_EQ(origin->orig_daddr, ipv4_address(SERVER_IP));
  EXPECT_EQ(origin->orig_dport, htons(80));
  EXPECT_EQ(origin->flags, PROXY_F_INGRESS);
  EXPECT_EQ(origin->src_identity, CLIENT_IDENTITY);
  EXPECT_EQ(origin->dst_identity, SERVER_IDENTITY);
  EXPECT_EQ(origin->src_endpoint_id, CLIENT_ENDPOINT);
  EXPECT_EQ(origin->dst_endpoint_id, SERVER_ENDPOINT);

  // The rest of the connection follows the SYN.
  RunResult ack = client_sends(40000, ACK | PSH);
  EXPECT_EQ(ack.verdict, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(daddr_of(ack.output), PROXY_IP);
  EXPECT_TRUE(tcp_checksum_ok(ack.output));
}

TEST_F(ProxyRedirectTest, ProxyRepliesReachTheClientFromTheOriginalServer) {
  server_allows_client_on_80(PROXY_PORT);
  ASSERT_EQ(client_sends(40001, SYN).verdict, static_cast<uint32_t>(TC_ACT_OK));

  RunResult reply = run_to_pod(
      client_.receive_from(PROXY_IP).tcp(PROXY_PORT, 40001, SYN | ACK).payload("HTTP/1.1 200 OK\r\n\r\n").build(),
      LOOPBACK_IFINDEX);
  EXPECT_EQ(reply.verdict, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(saddr_of(reply.output), SERVER_IP);
  EXPECT_EQ(sport_of(reply.output), 80);
  EXPECT_EQ(daddr_of(reply.output), CLIENT_IP);
  EXPECT_TRUE(ip_checksum_ok(reply.output));
  EXPECT_TRUE(tcp_checksum_ok(reply.output));
}

TEST_F(ProxyRedirectTest, PlainAllowGoesStraightToTheServer) {
  server_allows_client_on_80(0);
  RunResult r = client_sends(40002, SYN);
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(TC_ACT_REDIRECT));
  EXPECT_EQ(daddr_of(r.output), SERVER_IP);
  EXPECT_FALSE(datapath().proxy_origin().lookup({ipv4_address(CLIENT_IP), htons(40002), htons(PROXY_PORT)}));
}

TEST_F(ProxyRedirectTest, RemovingTheProxyEntryMovesOnlyNewConnections) {
  server_allows_client_on_80(PROXY_PORT);
  ASSERT_EQ(daddr_of(client_sends(40003, SYN).output), PROXY_IP);
  server_allows_client_on_80(0);  // the L7 rule is gone, the port is still allowed
  EXPECT_EQ(daddr_of(client_sends(40003, ACK).output), PROXY_IP) << "an established connection stays on the proxy";
  EXPECT_EQ(daddr_of(client_sends(40004, SYN).output), SERVER_IP) << "a new one goes straight to the server";
}

TEST_F(ProxyRedirectTest, NoProxyAddressNoRedirect) {
  server_allows_client_on_80(PROXY_PORT);
  datapath().proxy_config().update(0, proxy_config{0, 0});
  EXPECT_EQ(daddr_of(client_sends(40005, SYN).output), SERVER_IP);
}

// The client's own egress policy can ask for the proxy too: policy_check, which judged the
// SYN, hands its entry's proxy port to proxy_redirect (no second lookup).
TEST_F(ProxyRedirectTest, ClientEgressProxyEntryRedirectsTheSyn) {
  server_allows_client_on_80(0);
  policy_key key{};
  key.prefixlen = POLICY_PREFIX_FULL;
  key.endpoint_id = CLIENT_ENDPOINT;
  key.direction = METRIC_EGRESS;
  key.identity = SERVER_IDENTITY;
  key.protocol = IPPROTO_TCP;
  key.dport = htons(80);
  policy_entry entry{};
  entry.proxy_port = htons(PROXY_PORT);
  datapath().policy().update(key, entry);

  RunResult r = client_sends(40006, SYN);
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(daddr_of(r.output), PROXY_IP);
  EXPECT_EQ(dport_of(r.output), PROXY_PORT);
  EXPECT_TRUE(tcp_checksum_ok(r.output));
  auto origin = datapath().proxy_origin().lookup({ipv4_address(CLIENT_IP), htons(40006), htons(PROXY_PORT)});
  ASSERT_TRUE(origin.has_value());
  EXPECT_EQ(origin->flags, PROXY_F_EGRESS);

  // A deny in the client's egress beside it: policy_check drops, nothing reaches the proxy.
  policy_key any = key;
  any.identity = 0;
  policy_entry deny{};
  deny.flags = POLICY_F_DENY;
  datapath().policy().update(any, deny);
  EXPECT_EQ(client_sends(40007, SYN).verdict, static_cast<uint32_t>(TC_ACT_SHOT));
  EXPECT_FALSE(datapath().proxy_origin().lookup({ipv4_address(CLIENT_IP), htons(40007), htons(PROXY_PORT)}));
}

// IPv4 options move the TCP header; the shared NAT rewrite finds it, so such a SYN is
// proxied like any other (it used to bypass the proxy).
TEST_F(ProxyRedirectTest, SynWithIpOptionsIsRedirectedToo) {
  server_allows_client_on_80(PROXY_PORT);
  RunResult r = run_from_pod(client_.send_to(SERVER_IP).ip_options(3).tcp(40008, 80, SYN).payload("x").build(),
                             LOOPBACK_IFINDEX);
  EXPECT_EQ(r.verdict, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(daddr_of(r.output), PROXY_IP);
  const size_t tcp = TCP_OFF + 12;
  EXPECT_EQ((r.output[tcp + 2] << 8) | r.output[tcp + 3], PROXY_PORT);
  uint16_t ihl = (r.output[IP_OFF] & 0xf) * 4;
  EXPECT_EQ(fold(sum16(&r.output[IP_OFF], ihl)), 0xffff) << "IP checksum";
  uint32_t sum = sum16(&r.output[IP_OFF + 12], 8) + IPPROTO_TCP + static_cast<uint32_t>(r.output.size() - tcp);
  EXPECT_EQ(fold(sum16(&r.output[tcp], r.output.size() - tcp, sum)), 0xffff) << "TCP checksum";
}

}  // namespace
}  // namespace pilus::test
