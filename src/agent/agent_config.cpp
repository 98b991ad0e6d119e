#include "agent/agent_config.h"

namespace pilus::agent {

nlohmann::json to_json(const AgentConfig& c) {
  return {{"stateDir", c.state_dir},     {"socket", c.socket},   {"podCIDR", c.pod_cidr},
          {"bpfRoot", c.bpf_root},       {"hostDevice", c.host_device}, {"cgroup", c.cgroup},
          {"metricsAddr", c.metrics_addr}, {"ctMax", c.ct_max},   {"ctGcIntervalSeconds", c.ct_gc_interval_s},
          {"policyMax", c.policy_max},   {"eventBufferBytes", c.event_buffer_bytes},
          {"serviceCIDR", c.service_cidr}, {"maglevTableSize", c.maglev_size}, {"lbAlgorithm", c.lb_algorithm},
          {"lbMaxServices", c.lb_max_services}, {"proxyMaxConnections", c.proxy_max_connections},
          {"proxyMaxConnectionsPerIdentity", c.proxy_max_connections_per_identity}};
}

AgentConfig config_from_json(const nlohmann::json& j) {
  AgentConfig c;
  c.state_dir = j.value("stateDir", c.state_dir);
  c.socket = j.value("socket", c.socket);
  c.pod_cidr = j.value("podCIDR", c.pod_cidr);
  c.bpf_root = j.value("bpfRoot", c.bpf_root);
  c.host_device = j.value("hostDevice", c.host_device);
  c.cgroup = j.value("cgroup", c.cgroup);
  c.metrics_addr = j.value("metricsAddr", c.metrics_addr);
  c.ct_max = j.value("ctMax", c.ct_max);
  c.ct_gc_interval_s = j.value("ctGcIntervalSeconds", c.ct_gc_interval_s);
  c.policy_max = j.value("policyMax", c.policy_max);
  c.event_buffer_bytes = j.value("eventBufferBytes", c.event_buffer_bytes);
  c.service_cidr = j.value("serviceCIDR", c.service_cidr);
  c.maglev_size = j.value("maglevTableSize", c.maglev_size);
  c.lb_algorithm = j.value("lbAlgorithm", c.lb_algorithm);
  c.lb_max_services = j.value("lbMaxServices", c.lb_max_services);
  c.proxy_max_connections = j.value("proxyMaxConnections", c.proxy_max_connections);
  c.proxy_max_connections_per_identity = j.value("proxyMaxConnectionsPerIdentity", c.proxy_max_connections_per_identity);
  return c;
}

}  // namespace pilus::agent
