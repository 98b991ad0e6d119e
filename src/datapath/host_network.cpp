#include "datapath/host_network.h"

#include <net/if.h>

#include <filesystem>

#include <fmt/format.h>

#include "common/command.h"
#include "common/error.h"

namespace pilus::datapath {

std::string mac_to_string(const Mac& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

Mac mac_from_name(const std::string& name, uint8_t salt) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  h = (h ^ salt) * 1099511628211ULL;
  Mac m{};
  m[0] = 0x0a;  // locally administered, unicast
  for (int i = 1; i < 6; i++) m[i] = static_cast<uint8_t>(h >> (8 * i));
  return m;
}

bool netns_exists(const std::string& netns) { return std::filesystem::exists("/run/netns/" + netns); }

void netns_add(const std::string& netns) { run_checked({"ip", "netns", "add", netns}); }

void netns_delete(const std::string& netns) {
  if (netns_exists(netns)) run_checked({"ip", "netns", "delete", netns});
}

int link_ifindex(const std::string& name) { return static_cast<int>(if_nametoindex(name.c_str())); }

void link_delete(const std::string& name) {
  if (link_ifindex(name) != 0) run_command({"ip", "link", "delete", name});
}

void create_pod_link(const PodLink& l) {
  const std::string host_mac = mac_to_string(l.host_mac);
  const std::string pod_mac = mac_to_string(l.pod_mac);
  run_checked({"ip", "link", "add", l.host_if, "address", host_mac, "type", "veth", "peer", "name", l.pod_if, "address",
               pod_mac, "netns", l.netns});
  // Inside the pod.
  const std::vector<std::vector<std::string>> in_pod = {
      {"link", "set", "lo", "up"},
      {"addr", "add", l.pod_ip + "/32", "dev", l.pod_if},
      {"link", "set", l.pod_if, "up"},
      {"neigh", "replace", l.router_ip, "lladdr", host_mac, "dev", l.pod_if, "nud", "permanent"},
      {"route", "replace", l.router_ip, "dev", l.pod_if, "scope", "link"},
      {"route", "replace", "default", "via", l.router_ip, "dev", l.pod_if},
  };
  for (const auto& args : in_pod) {
    std::vector<std::string> argv = {"ip", "-n", l.netns};
    argv.insert(argv.end(), args.begin(), args.end());
    run_checked(argv);
  }
  run_checked({"ip", "netns", "exec", l.netns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"});
  // On the host, only on the link pilus just created.
  run_checked({"sysctl", "-q", "-w", "net.ipv6.conf." + l.host_if + ".disable_ipv6=1"});
  run_checked({"ip", "link", "set", l.host_if, "up"});
  run_checked({"ip", "neigh", "replace", l.pod_ip, "lladdr", pod_mac, "dev", l.host_if, "nud", "permanent"});
  run_checked({"ip", "route", "replace", l.pod_ip + "/32", "dev", l.host_if, "scope", "link", "src", l.router_ip});
}

void ensure_host_device(const std::string& name, const std::string& router_ip, const std::string& pod_cidr) {
  // A bridge without ports: holds an address and swallows what is routed to
  // it, like a dummy link, but exists in kernels built without CONFIG_DUMMY.
  if (link_ifindex(name) == 0) run_checked({"ip", "link", "add", name, "type", "bridge"});
  run_checked({"sysctl", "-q", "-w", "net.ipv6.conf." + name + ".disable_ipv6=1"});
  run_checked({"ip", "addr", "replace", router_ip + "/32", "dev", name});
  run_checked({"ip", "link", "set", name, "up"});
  run_checked({"ip", "route", "replace", pod_cidr, "dev", name});
}

}  // namespace pilus::datapath
