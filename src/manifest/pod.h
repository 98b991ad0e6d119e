// The Pod kind: what the agent needs to create an endpoint (netns, labels) and optionally run a command in it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "manifest/document.h"

namespace pilus::manifest {

struct ContainerPort {
  std::string name;  // "" when unnamed
  uint16_t container_port = 0;
  std::string protocol = "TCP";  // TCP or UDP
};

struct Container {
  std::string name, image;  // image is optional: pilus runs `command` directly in the pod's netns
  std::vector<std::string> command, args;
  std::vector<ContainerPort> ports;
  std::vector<std::pair<std::string, std::string>> env;  // in manifest order, names unique
};

struct Pod {
  static constexpr std::string_view kKind = "Pod";
  std::string name, ns;
  std::map<std::string, std::string> labels, annotations;
  std::vector<Container> containers;  // at least one
  std::string node_name;              // spec.nodeName, "" when absent (for clusters)
  std::string service_account;        // spec.serviceAccountName, "" when absent; an identity label as in Cilium
};

// Strict: unknown fields, wrong types and invalid names are errors naming the field.
// spec.restartPolicy is accepted (Always/OnFailure/Never) but pilus never restarts a command.
Pod parse_pod(const Document& d);

}  // namespace pilus::manifest
