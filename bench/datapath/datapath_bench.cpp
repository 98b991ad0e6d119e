// Datapath cost per packet: the real from_pod program under BPF_PROG_TEST_RUN, on a private
// (unpinned) datapath whose policy map, ipcache and service (LB) maps hold N entries each.
// Prints one JSON record per row (bench/report.py turns them into tables); the baseline is
// the same packet with N = 10, so the ratio shows whether the cost stays flat as maps grow.
//
// One BPF_PROG_TEST_RUN call per packet (`repeat` 1): with a larger repeat the kernel runs
// the program again on the packet it already rewrote (TTL down by one each hop, a VIP
// already translated), so later repetitions would measure another packet. The kernel's
// duration of one call is the program plus one clock read. A second table uses `repeat`
// for a packet the program leaves as it is (a known connection to the node: no hop, no
// NAT), so it shows ns per packet without the per-call overhead.
//
// A known connection's packet skips policy while its conntrack entry holds an allow of the
// current policy revision: the "revision bumped before every packet" rows are the same
// packet judged in full each time (the cost without the cache), in the same run.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "abi/endpoint.h"
#include "abi/identity.h"
#include "abi/lb.h"
#include "abi/ipcache.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "bpf/packet_builder.h"
#include "common/error.h"
#include "datapath/datapath.h"
#include "service/maglev.h"

namespace {

using pilus::test::ipv4_address;
using pilus::test::PacketBuilder;

constexpr uint16_t kClientEndpoint = 1, kServerEndpoint = 2;
constexpr uint32_t kClientIdentity = 300, kServerIdentity = 301;
constexpr const char* kClientIp = "10.244.0.10";
constexpr const char* kServerIp = "10.244.0.11";
constexpr uint16_t kAllowedPort = 80, kDeniedPort = 81, kNodePort = 22;
constexpr const char* kNodeIp = "10.244.0.1";  // the node's address (ipcache: host)
constexpr uint16_t kKnownPort = 65000;  // the client's port on the same-tuple cases
constexpr uint32_t kWarmPackets = 200;
constexpr int kLoopback = 1;  // a device every machine has, needed behind ctx ifindex

struct Pod {
  const char* ip;
  uint16_t endpoint_id;
  uint32_t identity;
  pilus::test::Mac pod_mac, host_mac;
};

const Pod kClient{kClientIp, kClientEndpoint, kClientIdentity, {2, 0, 0, 0xbe, 0, 1}, {6, 0, 0, 0xbe, 0, 1}};
const Pod kServer{kServerIp, kServerEndpoint, kServerIdentity, {2, 0, 0, 0xbe, 0, 2}, {6, 0, 0, 0xbe, 0, 2}};
// The service's three backends: the server and two more pods of the same identity.
const Pod kBackends[] = {kServer,
                         {"10.244.0.12", 3, kServerIdentity, {2, 0, 0, 0xbe, 0, 3}, {6, 0, 0, 0xbe, 0, 3}},
                         {"10.244.0.13", 4, kServerIdentity, {2, 0, 0, 0xbe, 0, 4}, {6, 0, 0, 0xbe, 0, 4}}};
constexpr uint32_t kFirstVip = 10u << 24 | 96u << 16 | 1;  // 10.96.0.1, host order

void add_pod(pilus::datapath::Datapath& dp, const Pod& pod, uint16_t flags) {
  endpoint_info info{};
  info.ifindex = kLoopback;
  info.identity = pod.identity;
  info.endpoint_id = pod.endpoint_id;
  info.flags = flags;
  std::memcpy(info.host_mac, pod.host_mac.data(), sizeof info.host_mac);
  std::memcpy(info.pod_mac, pod.pod_mac.data(), sizeof info.pod_mac);
  dp.endpoints().update(endpoint_key{ipv4_address(pod.ip)}, info);
  dp.ipcache().update(ipcache_key{32, ipv4_address(pod.ip)}, ipcache_value{pod.identity, IPCACHE_F_LOCAL_POD});
}

policy_key egress_key(uint32_t peer_identity, uint16_t port) {
  policy_key key{};
  key.prefixlen = POLICY_PREFIX_FULL;
  key.endpoint_id = kClientEndpoint;
  key.direction = METRIC_EGRESS;
  key.identity = peer_identity;
  key.protocol = IPPROTO_TCP;
  key.dport = htons(port);
  return key;
}

uint32_t vip_of(uint32_t service) { return htonl(kFirstVip + service); }

// N services (VIPs from 10.96.0.1 on, port 80/TCP; past 65534 they run into 10.97/16, which
// is fine for maps nothing routes) sharing the three backend pods, as services selecting the
// same pods do. The last one is the one the packets go to. Its Maglev row is written in full
// (1021 slots, as the agent writes it); the other rows stay as created, since an array
// lookup costs the same whatever it holds and writing N * 1021 slots would take minutes.
void seed_services(pilus::datapath::Datapath& dp, uint32_t n) {
  auto backends = dp.lb_backends();
  std::vector<pilus::service::MaglevBackend> members;
  for (uint32_t i = 0; i < 3; i++) {
    backends.update(i + 1, lb_backend{ipv4_address(kBackends[i].ip), htons(kAllowedPort), IPPROTO_TCP,
                                      LB_BACKEND_ACTIVE});
    members.push_back({std::string(kBackends[i].ip) + ":80/TCP", i + 1});
  }
  auto services = dp.lb_services();
  for (uint32_t i = 0; i < n; i++) {
    lb_service value{};
    value.service_id = i + 1;
    value.backend_count = 3;
    services.update(lb_service_key{vip_of(i), htons(kAllowedPort), IPPROTO_TCP, 0}, value);
  }
  const uint32_t size = dp.config().maglev_size;
  std::vector<uint32_t> row = pilus::service::maglev_table(members, size);
  auto maglev = dp.lb_maglev();
  for (uint32_t slot = 0; slot < size; slot++) maglev.update(n * size + slot, row[slot]);
}

// N ipcache /32s of other pods (10.128.0.0/10, never routed) and N egress allow entries
// for the client, each to one of those identities on its own port; plus the rule that
// allows client -> server:80, written last; and N services.
void seed(pilus::datapath::Datapath& dp, uint32_t n) {
  add_pod(dp, kClient, ENDPOINT_F_EGRESS_ENFORCED);
  for (const Pod& backend : kBackends) add_pod(dp, backend, 0);
  auto ipcache = dp.ipcache();
  auto policy = dp.policy();
  for (uint32_t i = 0; i < n; i++) {
    uint32_t identity = 1000 + i;
    ipcache.update(ipcache_key{32, htonl((10u << 24 | 128u << 16) + i)}, ipcache_value{identity, 0});
    policy.update(egress_key(identity, static_cast<uint16_t>(1024 + i % 60000)), policy_entry{});
  }
  policy.update(egress_key(kServerIdentity, kAllowedPort), policy_entry{});
  policy.update(egress_key(IDENTITY_HOST, kNodePort), policy_entry{});
  ipcache.update(ipcache_key{32, ipv4_address(kNodeIp)}, ipcache_value{IDENTITY_HOST, IPCACHE_F_HOST});
  seed_services(dp, n);
  dp.bump_policy_revision();  // as the agent does after writing its maps
}

struct Run {
  uint32_t verdict;
  uint32_t ns;
};

Run run_once(int prog_fd, const std::vector<uint8_t>& packet, std::vector<uint8_t>& out, uint32_t repeat = 1) {
  __sk_buff skb{};
  skb.ifindex = kLoopback;
  bpf_test_run_opts opts{};
  opts.sz = sizeof opts;
  opts.data_in = packet.data();
  opts.data_size_in = static_cast<uint32_t>(packet.size());
  opts.data_out = out.data();
  opts.data_size_out = static_cast<uint32_t>(out.size());
  opts.ctx_in = &skb;
  opts.ctx_size_in = sizeof skb;
  opts.repeat = repeat;
  if (bpf_prog_test_run_opts(prog_fd, &opts) < 0) throw pilus::system_error("BPF_PROG_TEST_RUN", errno);
  return {opts.retval, opts.duration};
}

struct Case {
  std::string name;
  uint32_t daddr;  // network order
  uint16_t dport;
  bool new_connection;  // a SYN of a connection not seen before on every packet
  uint32_t expected_verdict;
  bool bump_each = false;  // the policy revision bumped before every packet: no cached verdict
  uint8_t flags = pilus::test::tcp_flag::SYN;
};

std::vector<uint8_t> frame(uint32_t daddr, uint16_t sport, uint16_t dport,
                           uint8_t flags = pilus::test::tcp_flag::SYN) {
  char dst[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &daddr, dst, sizeof dst);
  PacketBuilder b;
  b.eth(kClient.pod_mac, kClient.host_mac).ipv4(kClientIp, dst).tcp(sport, dport, flags);
  return b.build();
}

// Mean ns of `packets` calls; every verdict must be the expected one. A new-connection case
// takes the next source ports (`next_port`, unique per datapath, so never a known tuple).
double measure(const pilus::datapath::Datapath& dp, const Case& c, uint32_t n, uint32_t packets,
               uint32_t& next_port) {
  const int prog_fd = dp.from_pod_fd();
  std::vector<uint8_t> out(2048);
  std::vector<uint8_t> same = frame(c.daddr, kKnownPort, c.dport, c.flags);
  uint64_t total = 0;
  for (uint32_t i = 0; i < packets; i++) {
    if (c.bump_each) dp.bump_policy_revision();
    Run r = c.new_connection ? run_once(prog_fd, frame(c.daddr, static_cast<uint16_t>(next_port++), c.dport), out)
                             : run_once(prog_fd, same, out);
    if (r.verdict != c.expected_verdict)
      pilus::fail("{} with N={}: verdict {} where {} was expected", c.name, n, r.verdict, c.expected_verdict);
    total += r.ns;
  }
  return static_cast<double>(total) / packets;
}

// ns per packet of `packets` runs in one BPF_PROG_TEST_RUN call (`repeat`): the known
// connection to the node, which the program passes on untouched (TC_ACT_OK).
double measure_repeat(const pilus::datapath::Datapath& dp, uint32_t packets) {
  std::vector<uint8_t> out(2048);
  Run r = run_once(dp.from_pod_fd(), frame(ipv4_address(kNodeIp), kKnownPort, kNodePort, pilus::test::tcp_flag::ACK),
                   out, packets);
  if (r.verdict != TC_ACT_OK) pilus::fail("known connection to the node: verdict {}, not TC_ACT_OK", r.verdict);
  return r.ns;  // the kernel reports the mean per repetition
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pilus datapath benchmark"};
  std::vector<uint32_t> sizes{10, 1000, 10000, 100000};
  uint32_t packets = 4000;
  int reps = 5;
  app.add_option("--sizes", sizes, "policy map, ipcache and service entries");
  app.add_option("--packets", packets, "packets per run, one BPF_PROG_TEST_RUN call each");
  app.add_option("--reps", reps, "runs per row (min/median/max)");
  uint32_t repeat = 100000;
  app.add_option("--repeat", repeat, "packets in the one BPF_PROG_TEST_RUN call of the repeat table");
  CLI11_PARSE(app, argc, argv);
  std::sort(sizes.begin(), sizes.end());
  // The two new-connection cases take one source port per packet from 1024 on, never twice
  // on a datapath (a backend may be the server itself), and below the known connection's.
  if (2 * (uint64_t(packets) * reps + kWarmPackets) + 1024 > kKnownPort) {
    std::fprintf(stderr, "datapath bench: --packets x --reps must stay below 31000 (source ports)\n");
    return 2;
  }

  const uint32_t server = ipv4_address(kServerIp);
  // Allowed: redirected to the server's veth. Denied: no entry, egress default deny.
  // Service: a SYN to the last VIP, translated to one of its backends, then allowed.
  auto cases_for = [&](uint32_t n) {
    const uint32_t node = ipv4_address(kNodeIp);
    const uint8_t ack = pilus::test::tcp_flag::ACK;
    return std::vector<Case>{{"allowed TCP", server, kAllowedPort, false, TC_ACT_REDIRECT},
                             {"allowed TCP, revision bumped before every packet", server, kAllowedPort, false,
                              TC_ACT_REDIRECT, true},
                             {"allowed TCP ACK to the node", node, kNodePort, false, TC_ACT_OK, false, ack},
                             {"allowed TCP ACK to the node, revision bumped before every packet", node, kNodePort,
                              false, TC_ACT_OK, true, ack},
                             {"denied TCP", server, kDeniedPort, false, TC_ACT_SHOT},
                             {"allowed TCP SYN, new connection", server, kAllowedPort, true, TC_ACT_REDIRECT},
                             {"service VIP SYN, new connection", vip_of(n - 1), kAllowedPort, true, TC_ACT_REDIRECT},
                             {"service VIP, known connection", vip_of(n - 1), kAllowedPort, false, TC_ACT_REDIRECT}};
  };
  // One datapath per N, all alive at once, so that every repetition measures every N in
  // turn and machine noise hits them alike (as the traffic benchmarks interleave).
  struct Sized {
    uint32_t n;
    std::unique_ptr<pilus::datapath::Datapath> dp;
    uint32_t next_port = 1024;
    std::map<std::string, std::vector<double>> samples;  // case -> ns per packet, one per repetition
    std::vector<double> repeated;                          // ns per packet with `repeat`
  };
  try {
    std::vector<Sized> datapaths;
    for (uint32_t n : sizes) {
      pilus::datapath::DatapathConfig config{.pin = false};
      config.policy_max = std::max<uint32_t>(POLICY_MAX_DEFAULT, n + 16);
      config.lb_max_services = std::max<uint32_t>(LB_SERVICES_MAX, n + 16);
      Sized s{n, std::make_unique<pilus::datapath::Datapath>(config)};
      seed(*s.dp, n);
      for (const Case& c : cases_for(n)) measure(*s.dp, c, n, kWarmPackets, s.next_port);  // warm
      datapaths.push_back(std::move(s));
    }
    for (int r = 0; r < reps; r++)
      for (Sized& s : datapaths) {
        for (const Case& c : cases_for(s.n))
          s.samples[c.name].push_back(measure(*s.dp, c, s.n, packets, s.next_port));
        s.repeated.push_back(measure_repeat(*s.dp, repeat));
      }
    for (const Sized& s : datapaths) {
      for (const Case& c : cases_for(s.n)) {
        nlohmann::json record = {
            {"bench", "datapath"},
            {"table", "Datapath cost per packet (from_pod, BPF_PROG_TEST_RUN)"},
            {"param", c.name + ", N=" + std::to_string(s.n)},
            {"unit", "ns/packet"},
            {"pilus", s.samples.at(c.name)},
            {"baseline", datapaths.front().samples.at(c.name)},
            {"baseline_name", "same packet, N=" + std::to_string(sizes.front())},
            {"lower_is_better", true},
            {"note", std::to_string(packets) +
                         " packets per run, one BPF_PROG_TEST_RUN call each (the kernel's time: the program and one "
                         "clock read); N policy entries, N ipcache entries and N services (3 backends each, the "
                         "packet's VIP last); every repetition measures every N in turn"}};
        std::printf("%s\n", record.dump().c_str());
      }
      // The cached rows against the same packet judged in full, at the same N.
      for (const char* cached : {"allowed TCP", "allowed TCP ACK to the node"}) {
        nlohmann::json record = {
            {"bench", "datapath"},
            {"table", "Known connection: cached policy verdict vs judged in full (from_pod, BPF_PROG_TEST_RUN)"},
            {"param", std::string(cached) + ", N=" + std::to_string(s.n)},
            {"unit", "ns/packet"},
            {"pilus", s.samples.at(cached)},
            {"baseline", s.samples.at(std::string(cached) + ", revision bumped before every packet")},
            {"baseline_name", "the same packet with the policy revision bumped before it (no cached verdict)"},
            {"lower_is_better", true},
            {"note", "the packet of a known, allowed connection; the baseline bumps the policy revision before "
                     "every packet, so the program judges it in full (today's cost without the cache)"}};
        std::printf("%s\n", record.dump().c_str());
      }
      nlohmann::json record = {
          {"bench", "datapath"},
          {"table", "Known connection to the node, ns per packet in one call (from_pod, BPF_PROG_TEST_RUN repeat)"},
          {"param", "N=" + std::to_string(s.n)},
          {"unit", "ns/packet"},
          {"pilus", s.repeated},
          {"baseline", datapaths.front().repeated},
          {"baseline_name", "same packet, N=" + std::to_string(sizes.front())},
          {"lower_is_better", true},
          {"note", std::to_string(repeat) + " repetitions of one TCP ACK of a known, allowed connection to the node "
                   "in one BPF_PROG_TEST_RUN call (the program passes it on untouched, so every repetition "
                   "measures the same packet; the kernel's mean per repetition, without the syscall)"}};
      std::printf("%s\n", record.dump().c_str());
    }
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "datapath bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
