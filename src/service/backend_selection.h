// Which pods serve a service port: the ready pods of the service's namespace
// whose labels match its selector, at the target port (a number, or the pod's
// containerPort of that name and protocol).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "endpoint/ipv4.h"
#include "manifest/pod.h"
#include "manifest/service.h"

namespace pilus::service {

struct PodCandidate {
  std::string ns, name;
  std::map<std::string, std::string> labels;
  endpoint::Ipv4 ip;
  std::vector<manifest::ContainerPort> ports;  // of all containers
  bool ready = false;                          // has its network, and its command (if any) still runs
};

struct Backend {
  std::string pod;  // namespace/name
  endpoint::Ipv4 ip;
  uint16_t port = 0;

  bool operator==(const Backend&) const = default;
};

// In pod name order. A selector-less service selects nothing (as in
// Kubernetes, where its endpoints would be given by hand).
std::vector<Backend> select_backends(const manifest::Service& svc, const manifest::ServicePort& port,
                                     const std::vector<PodCandidate>& pods);

}  // namespace pilus::service
