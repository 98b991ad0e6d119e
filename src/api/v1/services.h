// GET /v1/services: Services shaped as the Kubernetes API returns them, with the backends the load
// balancer uses in status.
#pragma once

#include "api/v1/meta.h"

namespace pilus::api::v1 {

struct ServicePort {
  std::string protocol;
  std::int64_t port = 0;
  std::string name;
  IntOrString target_port;
};

void fields(auto& f, Is<ServicePort> auto& p) {
  f("protocol", p.protocol);
  f("port", p.port);
  f("name", p.name, Presence::kOmitEmpty);
  f("targetPort", p.target_port);
}

struct ServiceSpec {
  std::string type = "ClusterIP";
  std::string cluster_ip;
  std::vector<ServicePort> ports;
  Labels selector;
  std::string session_affinity;  // None, ClientIP
};

void fields(auto& f, Is<ServiceSpec> auto& s) {
  f("type", s.type);
  f("clusterIP", s.cluster_ip);
  f("ports", s.ports);
  f("selector", s.selector);
  f("sessionAffinity", s.session_affinity);
}

struct ServiceBackend {
  std::string pod;  // namespace/name
  std::string ip;
  std::int64_t port = 0;
  std::string protocol;
};

void fields(auto& f, Is<ServiceBackend> auto& b) {
  f("pod", b.pod);
  f("ip", b.ip);
  f("port", b.port);
  f("protocol", b.protocol);
}

struct ServiceStatus {
  std::vector<ServiceBackend> backends;
};

void fields(auto& f, Is<ServiceStatus> auto& s) { f("backends", s.backends); }

struct Service {
  std::string api_version = "v1";
  std::string kind = "Service";
  ObjectMeta metadata;
  ServiceSpec spec;
  ServiceStatus status;
};

void fields(auto& f, Is<Service> auto& s) {
  f("apiVersion", s.api_version);
  f("kind", s.kind);
  f("metadata", s.metadata);
  f("spec", s.spec);
  f("status", s.status);
}

inline std::string namespace_of(const Service& s) { return s.metadata.ns; }

using ServiceList = List<Service>;

}  // namespace pilus::api::v1
