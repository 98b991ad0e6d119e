// pilus-eventflood: feeds a running agent's events ring buffer faster than real traffic can on
// this machine, to measure the observer alone. It runs the agent's own pinned from_pod program
// under BPF_PROG_TEST_RUN with `repeat` on a UDP packet from a client pod to a port the server
// pod's policy denies: every run is the client's egress stage (a known connection, no event),
// then the server's ingress stage (a policy verdict and a drop event), and the packet is dropped
// unchanged, so each repetition is the same packet. Nothing is sent on any interface.
//
//   pilus-eventflood --bpf-root DIR --src IP --dst IP --port P --seconds S [--repeat N]
//
// Prints {"runs":..,"seconds":..,"per_second":..,"verdict":..} (runs = packets judged).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "abi/endpoint.h"
#include "bpf/packet_builder.h"

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "pilus-eventflood: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

int open_pin(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) die("opening " + path);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bpf_root, src, dst;
  int port = 9;
  double seconds = 2;
  unsigned repeat = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--bpf-root") bpf_root = v;
    else if (k == "--src") src = v;
    else if (k == "--dst") dst = v;
    else if (k == "--port") port = std::stoi(v);
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--repeat") repeat = static_cast<unsigned>(std::stoul(v));
    else {
      std::fprintf(stderr, "pilus-eventflood: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (bpf_root.empty() || src.empty() || dst.empty()) {
    std::fprintf(stderr, "usage: pilus-eventflood --bpf-root DIR --src IP --dst IP [--port P] [--seconds S] [--repeat N]\n");
    return 2;
  }
  int prog = open_pin(bpf_root + "/from_pod");
  int endpoints = open_pin(bpf_root + "/endpoints");
  // from_pod takes a packet only from the veth of the pod that owns its source address.
  endpoint_key key{pilus::test::ipv4_address(src)};
  endpoint_info client{};
  if (bpf_map_lookup_elem(endpoints, &key, &client) != 0) die("no endpoint " + src + " in " + bpf_root + "/endpoints");
  pilus::test::Mac pod_mac, host_mac;
  std::memcpy(pod_mac.data(), client.pod_mac, 6);
  std::memcpy(host_mac.data(), client.host_mac, 6);
  std::vector<uint8_t> packet = pilus::test::PacketBuilder()
                                    .eth(pod_mac, host_mac)
                                    .ipv4(src, dst)
                                    .udp(40000, static_cast<uint16_t>(port))
                                    .payload("pilus-eventflood")
                                    .build();
  std::vector<uint8_t> out(packet.size() + 256);
  long runs = 0;
  uint32_t verdict = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  while (elapsed() < seconds) {
    __sk_buff skb{};
    skb.ifindex = client.ifindex;
    bpf_test_run_opts opts{};
    opts.sz = sizeof opts;
    opts.data_in = packet.data();
    opts.data_size_in = static_cast<uint32_t>(packet.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<uint32_t>(out.size());
    opts.ctx_in = &skb;
    opts.ctx_size_in = sizeof skb;
    opts.repeat = repeat;
    if (bpf_prog_test_run_opts(prog, &opts) < 0) die("BPF_PROG_TEST_RUN");
    verdict = opts.retval;
    runs += repeat;
  }
  double s = elapsed();
  std::printf("{\"runs\":%ld,\"seconds\":%.3f,\"per_second\":%.1f,\"verdict\":%u}\n", runs, s, runs / s, verdict);
  close(prog);
  close(endpoints);
  return verdict == TC_ACT_SHOT ? 0 : 1;  // the packet must have been denied, or no drop events came
}
