// Links, addresses, routes and namespaces pilus creates for its pods, done
// with iproute2. Only ever touches links and namespaces pilus named itself.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace pilus::datapath {

using Mac = std::array<uint8_t, 6>;

std::string mac_to_string(const Mac& mac);
// A locally administered unicast MAC derived from a name, stable across restarts.
Mac mac_from_name(const std::string& name, uint8_t salt);

bool netns_exists(const std::string& netns);
void netns_add(const std::string& netns);
void netns_delete(const std::string& netns);  // no error if absent

// ifindex of a link in the host namespace, 0 when absent.
int link_ifindex(const std::string& name);
void link_delete(const std::string& name);  // no error if absent

struct PodLink {
  std::string netns;
  std::string host_if;  // host side of the veth; the pod side is pod_if
  Mac host_mac{};
  Mac pod_mac{};
  std::string pod_ip;     // dotted quad
  std::string router_ip;  // the node's address the pod routes through
  std::string pod_if = "eth0";  // a runtime may name it (CNI_IFNAME)
};

// Creates the veth pair and configures both ends: the pod gets pod_ip/32, a
// default route via router_ip and a permanent neighbour entry for it (no ARP);
// the host gets a /32 route to the pod through the veth. IPv6 is disabled in
// the pod (pilus's datapath is IPv4 for now).
void create_pod_link(const PodLink& link);

// The node side: a portless bridge holding router_ip, and the whole pod CIDR
// routed into it (where it is dropped) so that host traffic to unused pod addresses dies there
// instead of following the default route off the machine.
void ensure_host_device(const std::string& name, const std::string& router_ip, const std::string& pod_cidr);

}  // namespace pilus::datapath
