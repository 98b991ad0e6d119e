// Datapath cost per packet: the real from_pod program under BPF_PROG_TEST_RUN with `repeat`,
// on a private (unpinned) datapath whose policy map and ipcache hold N entries. Prints one
// JSON record per row (bench/report.py turns them into tables); the baseline is the same
// packet with N = 10, so the ratio shows whether the cost stays flat as maps grow.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "abi/endpoint.h"
#include "abi/ipcache.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "bpf/packet_builder.h"
#include "common/error.h"
#include "datapath/datapath.h"

namespace {

using pilus::test::ipv4_address;
using pilus::test::PacketBuilder;

constexpr uint16_t kClientEndpoint = 1, kServerEndpoint = 2;
constexpr uint32_t kClientIdentity = 300, kServerIdentity = 301;
constexpr const char* kClientIp = "10.244.0.10";
constexpr const char* kServerIp = "10.244.0.11";
constexpr uint16_t kAllowedPort = 80, kDeniedPort = 81;
constexpr int kLoopback = 1;  // a device every machine has, needed behind ctx ifindex

struct Pod {
  const char* ip;
  uint16_t endpoint_id;
  uint32_t identity;
  pilus::test::Mac pod_mac, host_mac;
};

const Pod kClient{kClientIp, kClientEndpoint, kClientIdentity, {2, 0, 0, 0xbe, 0, 1}, {6, 0, 0, 0xbe, 0, 1}};
const Pod kServer{kServerIp, kServerEndpoint, kServerIdentity, {2, 0, 0, 0xbe, 0, 2}, {6, 0, 0, 0xbe, 0, 2}};

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

// N ipcache /32s of other pods (10.128.0.0/10, never routed) and N egress allow entries
// for the client, each to one of those identities on its own port; plus the rule that
// allows client -> server:80, written last.
void seed(pilus::datapath::Datapath& dp, uint32_t n) {
  add_pod(dp, kClient, ENDPOINT_F_EGRESS_ENFORCED);
  add_pod(dp, kServer, 0);
  auto ipcache = dp.ipcache();
  auto policy = dp.policy();
  for (uint32_t i = 0; i < n; i++) {
    uint32_t identity = 1000 + i;
    ipcache.update(ipcache_key{32, htonl((10u << 24 | 128u << 16) + i)}, ipcache_value{identity, 0});
    policy.update(egress_key(identity, static_cast<uint16_t>(1024 + i % 60000)), policy_entry{});
  }
  policy.update(egress_key(kServerIdentity, kAllowedPort), policy_entry{});
}

struct Run {
  uint32_t verdict;
  double ns_per_packet;
};

Run run(int prog_fd, const std::vector<uint8_t>& packet, uint32_t repeat) {
  std::vector<uint8_t> out(packet.size() + 512);
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
  opts.repeat = static_cast<int>(repeat);
  if (bpf_prog_test_run_opts(prog_fd, &opts) < 0) throw pilus::system_error("BPF_PROG_TEST_RUN", errno);
  return {opts.retval, static_cast<double>(opts.duration)};  // duration: mean ns per repetition
}

struct Case {
  std::string name;
  std::vector<uint8_t> packet;
  uint32_t expected_verdict;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pilus datapath benchmark"};
  std::vector<uint32_t> sizes{10, 1000, 10000, 100000};
  uint32_t repeat = 200000;
  int reps = 5;
  app.add_option("--sizes", sizes, "policy map and ipcache entries");
  app.add_option("--repeat", repeat, "packets per BPF_PROG_TEST_RUN call");
  app.add_option("--reps", reps, "calls per row (min/median/max)");
  CLI11_PARSE(app, argc, argv);
  std::sort(sizes.begin(), sizes.end());

  auto frame = [](uint16_t dport) {
    PacketBuilder b;
    b.eth(kClient.pod_mac, kClient.host_mac).ipv4(kClientIp, kServerIp).tcp(40000, dport, pilus::test::tcp_flag::SYN);
    return b.build();
  };
  // Allowed: redirected to the server's veth. Denied: no entry, egress default deny.
  std::vector<Case> cases{{"allowed TCP", frame(kAllowedPort), TC_ACT_REDIRECT},
                          {"denied TCP", frame(kDeniedPort), TC_ACT_SHOT}};

  std::map<std::string, std::vector<double>> baseline;  // case -> samples at the smallest N
  try {
    for (uint32_t n : sizes) {
      pilus::datapath::DatapathConfig config{.pin = false};
      config.policy_max = std::max<uint32_t>(POLICY_MAX_DEFAULT, n + 16);
      pilus::datapath::Datapath dp(config);
      seed(dp, n);
      for (const Case& c : cases) {
        std::vector<double> samples;
        run(dp.from_pod_fd(), c.packet, 1000);  // warm: conntrack entry, caches
        for (int r = 0; r < reps; r++) {
          Run result = run(dp.from_pod_fd(), c.packet, repeat);
          if (result.verdict != c.expected_verdict)
            pilus::fail("{} with N={}: verdict {} where {} was expected", c.name, n, result.verdict,
                        c.expected_verdict);
          samples.push_back(result.ns_per_packet);
        }
        if (baseline.find(c.name) == baseline.end()) baseline[c.name] = samples;
        nlohmann::json record = {
            {"bench", "datapath"},
            {"table", "Datapath cost per packet (from_pod, BPF_PROG_TEST_RUN)"},
            {"param", c.name + ", N=" + std::to_string(n)},
            {"unit", "ns/packet"},
            {"pilus", samples},
            {"baseline", baseline[c.name]},
            {"baseline_name", "same packet, N=" + std::to_string(sizes.front())},
            {"lower_is_better", true},
            {"note", std::to_string(repeat) + " packets per run; N policy entries and N ipcache entries"}};
        std::printf("%s\n", record.dump().c_str());
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "datapath bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
