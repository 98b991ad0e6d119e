// The outside host: netns + veth + a /30 from 198.18.0.0/15 (the benchmarking range,
// never routed on the Internet), picked so that no address or route of the node uses it.
#include "e2e/outside_host.h"

#include <random>
#include <thread>

namespace pilus::e2e {

namespace {

std::string tag() {
  char buf[7];
  snprintf(buf, sizeof buf, "%06x", static_cast<unsigned>(std::random_device{}()) & 0xffffff);
  return buf;
}

void run_or_throw(const std::vector<std::string>& argv) {
  CommandResult r = run_command(argv);
  if (!r.ok()) throw HarnessError(r.describe());
}

}  // namespace

OutsideHost::OutsideHost(int tcp_port, int udp_port) {
  std::string t = tag();
  netns_ = "pl-outside-" + t;
  host_link_ = "po" + t;
  std::string taken = run_command({"ip", "-4", "route", "show", "table", "all"}).out +
                      run_command({"ip", "-4", "addr", "show"}).out;
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 200 && ip_.empty(); attempt++) {
    std::string net = "198.18." + std::to_string(rng() % 256) + ".";
    int base = static_cast<int>(rng() % 64) * 4;
    if (taken.find(net) != std::string::npos) continue;
    node_ip_ = net + std::to_string(base + 1);
    ip_ = net + std::to_string(base + 2);
  }
  if (ip_.empty()) throw HarnessError("no unused 198.18.x.0/24 for an outside host");
  try {
    run_or_throw({"ip", "netns", "add", netns_});
    run_or_throw({"ip", "link", "add", host_link_, "type", "veth", "peer", "name", "eth0", "netns", netns_});
    run_or_throw({"ip", "addr", "add", node_ip_ + "/30", "dev", host_link_});
    run_or_throw({"ip", "link", "set", host_link_, "up"});
    run_or_throw({"ip", "-n", netns_, "addr", "add", ip_ + "/30", "dev", "eth0"});
    run_or_throw({"ip", "-n", netns_, "link", "set", "eth0", "up"});
    run_or_throw({"ip", "-n", netns_, "link", "set", "lo", "up"});
    server_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        "ip", "netns", "exec", netns_, netprobe_bin(), "serve", "--tcp", std::to_string(tcp_port), "--udp",
        std::to_string(udp_port), "--name", name_});
    for (int i = 0; i < 100; i++) {
      CommandResult r = run_command({"ip", "netns", "exec", netns_, "ss", "-Hlnt", "sport = :" + std::to_string(tcp_port)});
      if (r.ok() && !r.out.empty()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw HarnessError("the outside host's server never listened");
  } catch (...) {
    server_.reset();
    run_command({"ip", "netns", "delete", netns_});
    throw;
  }
}

OutsideHost::~OutsideHost() {
  server_.reset();  // killed by its pid
  run_command({"ip", "netns", "delete", netns_});  // takes the veth pair with it
}

}  // namespace pilus::e2e
