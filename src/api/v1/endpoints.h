// GET /v1/endpoints: one per pod, as `cilium endpoint list` shows them.
#pragma once

#include "api/v1/meta.h"

namespace pilus::api::v1 {

struct Endpoint {
  std::uint16_t id = 0;
  std::string pod;  // namespace/name
  std::string ipv4;
  std::uint32_t identity = 0;
  std::vector<std::string> labels;  // "k8s:app=web"
  std::string interface;
  std::int64_t ifindex = 0;
  std::string netns;
  std::string state;  // ready, not-ready
};

void fields(auto& f, Is<Endpoint> auto& e) {
  f("id", e.id);
  f("pod", e.pod);
  f("ipv4", e.ipv4);
  f("identity", e.identity);
  f("labels", e.labels);
  f("interface", e.interface);
  f("ifindex", e.ifindex);
  f("netns", e.netns);
  f("state", e.state);
}

inline std::string namespace_of(const Endpoint& e) { return e.pod.substr(0, e.pod.find('/')); }

using EndpointList = List<Endpoint>;

}  // namespace pilus::api::v1
