// GET /v1/pods: pods shaped as the Kubernetes API returns them. podIP, netns, identity and phase
// are what scripts rely on; endpointID, hostInterface and pid are pilus's own.
#pragma once

#include "api/v1/meta.h"

namespace pilus::api::v1 {

struct ContainerPort {
  std::int64_t container_port = 0;
  std::string protocol;
  std::string name;
};

void fields(auto& f, Is<ContainerPort> auto& p) {
  f("containerPort", p.container_port);
  f("protocol", p.protocol);
  f("name", p.name, Presence::kOmitEmpty);
}

struct Container {
  std::string name;
  std::string image;
  std::vector<std::string> command, args;
  std::vector<ContainerPort> ports;
};

void fields(auto& f, Is<Container> auto& c) {
  f("name", c.name);
  f("image", c.image, Presence::kOmitEmpty);
  f("command", c.command, Presence::kOmitEmpty);
  f("args", c.args, Presence::kOmitEmpty);
  f("ports", c.ports, Presence::kOmitEmpty);
}

struct PodSpec {
  std::vector<Container> containers;
  std::string node_name;
};

void fields(auto& f, Is<PodSpec> auto& s) {
  f("containers", s.containers);
  f("nodeName", s.node_name);
}

struct PodIP {
  std::string ip;
};

void fields(auto& f, Is<PodIP> auto& p) { f("ip", p.ip); }

struct PodStatus {
  std::string pod_ip;
  std::vector<PodIP> pod_ips;
  std::string host_ip;
  std::string netns;
  std::uint32_t identity = 0;
  std::string phase;
  std::string host_interface;
  std::uint16_t endpoint_id = 0;
  std::int64_t pid = 0;
  std::string owner = "pilus";  // who runs the pod: pilus, or a container runtime through CNI
  std::string container_id;    // the runtime's container, for pods it owns
};

void fields(auto& f, Is<PodStatus> auto& s) {
  f("podIP", s.pod_ip);
  f("podIPs", s.pod_ips);
  f("hostIP", s.host_ip);
  f("netns", s.netns);
  f("identity", s.identity);
  f("phase", s.phase);
  f("hostInterface", s.host_interface);
  f("endpointID", s.endpoint_id);
  f("pid", s.pid);
  f("owner", s.owner, Presence::kOmitEmpty);
  f("containerID", s.container_id, Presence::kOmitEmpty);
}

struct Pod {
  std::string api_version = "v1";
  std::string kind = "Pod";
  ObjectMeta metadata;
  PodSpec spec;
  PodStatus status;
};

void fields(auto& f, Is<Pod> auto& p) {
  f("apiVersion", p.api_version);
  f("kind", p.kind);
  f("metadata", p.metadata);
  f("spec", p.spec);
  f("status", p.status);
}

inline std::string namespace_of(const Pod& p) { return p.metadata.ns; }

using PodList = List<Pod>;

}  // namespace pilus::api::v1
