#include "service/backend_selection.h"

#include <algorithm>

namespace pilus::service {

namespace {

bool selects(const std::map<std::string, std::string>& selector, const std::map<std::string, std::string>& labels) {
  if (selector.empty()) return false;
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

// 0 when the pod has no containerPort of that name and protocol: it is then
// not a backend of this port (Kubernetes leaves it out of the endpoints too).
uint16_t target_port(const manifest::ServicePort& port, const PodCandidate& pod) {
  if (port.target_port_name.empty()) return port.target_port;
  for (const auto& p : pod.ports)
    if (p.name == port.target_port_name && p.protocol == port.protocol) return p.container_port;
  return 0;
}

}  // namespace

std::vector<Backend> select_backends(const manifest::Service& svc, const manifest::ServicePort& port,
                                     const std::vector<PodCandidate>& pods) {
  std::vector<Backend> out;
  for (const auto& pod : pods) {
    if (pod.ns != svc.ns || !pod.ready || !selects(svc.selector, pod.labels)) continue;
    if (uint16_t p = target_port(port, pod)) out.push_back({pod.ns + "/" + pod.name, pod.ip, p});
  }
  std::sort(out.begin(), out.end(), [](const Backend& a, const Backend& b) { return a.pod < b.pod; });
  return out;
}

}  // namespace pilus::service
