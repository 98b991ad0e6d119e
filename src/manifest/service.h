// The Service kind (v1), type ClusterIP: a virtual IP and ports in front of
// the pods its selector picks.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "manifest/document.h"

namespace pilus::manifest {

struct ServicePort {
  std::string name;              // required when the service has several ports
  std::string protocol = "TCP";  // TCP or UDP
  uint16_t port = 0;
  uint16_t target_port = 0;      // a number, or 0 when target_port_name is set
  std::string target_port_name;  // a named containerPort of each backend pod
};

struct Service {
  static constexpr std::string_view kKind = "Service";
  std::string name, ns;
  std::map<std::string, std::string> labels, annotations;
  std::string cluster_ip;  // "" when absent: the agent allocates one
  std::vector<ServicePort> ports;
  std::map<std::string, std::string> selector;  // empty: no backends (no EndpointSlice support yet)
  bool client_ip_affinity = false;               // sessionAffinity: ClientIP
  uint32_t affinity_timeout_s = 10800;           // sessionAffinityConfig.clientIP.timeoutSeconds
};

// Strict: only type ClusterIP, IPv4, TCP/UDP; unknown fields and bad values are
// errors naming the field. Whether clusterIP is inside the service CIDR and
// free is the agent's check.
Service parse_service(const Document& d);

// RFC 1035 label (a letter first), as Kubernetes requires of service names.
std::optional<std::string> dns_1035_label_error(std::string_view s);

}  // namespace pilus::manifest
