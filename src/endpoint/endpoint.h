// An endpoint: a pod as the node sees it, with everything pilus allocated and
// created for it. Persisted in the store so a restarted agent can adopt it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "datapath/host_network.h"
#include "endpoint/ipv4.h"
#include "endpoint/pod_process.h"

namespace pilus::endpoint {

// A container a runtime created and handed to pilus through CNI: the runtime owns the network
// namespace (bound at /run/netns/<netns> while pilus serves it) and the processes.
struct RuntimeContainer {
  std::string id;          // CNI_CONTAINERID
  std::string netns_path;  // CNI_NETNS
  std::string if_name;     // CNI_IFNAME
  std::map<std::string, std::string> labels;  // the container's own labels
};

struct Endpoint {
  uint16_t id = 0;  // node-local, keys per-endpoint counters
  std::string ns, name;
  std::string netns;    // /run/netns/<netns>
  std::string host_if;  // host side of the veth
  Ipv4 ip;
  datapath::Mac host_mac{}, pod_mac{};
  int ifindex = 0;  // of host_if; learnt again on restore
  uint32_t identity = 0;
  ProcessHandle process;          // pid 0: no command
  std::optional<int> exit_code;   // known when the agent reaped it
  std::optional<RuntimeContainer> runtime;  // set: a runtime's container (owner "runtime")
  std::string owner() const { return runtime ? "runtime" : "pilus"; }
  std::string key() const { return ns + "/" + name; }
  std::string phase() const;  // Running, Succeeded, Failed, as Kubernetes says
};

nlohmann::json to_json(const Endpoint& e);
Endpoint endpoint_from_json(const nlohmann::json& j);

// Names derived from the pod, stable across restarts.
std::string netns_name(const std::string& ns, const std::string& name);
std::string host_if_name(const std::string& netns);

}  // namespace pilus::endpoint
