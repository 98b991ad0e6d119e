// The Pod kind: what the agent needs to create an endpoint (netns, labels) and optionally run a command in it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
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

// securityContext of a container (all fields) or of the pod (users and groups only);
// a container's field wins over the pod's, as in Kubernetes.
struct SecurityContext {
  std::optional<int64_t> run_as_user, run_as_group;
  std::optional<bool> run_as_non_root, allow_privilege_escalation;
  bool privileged = false;
  std::vector<std::string> capabilities_add, capabilities_drop;  // "NET_ADMIN" (no CAP_ prefix) or "ALL"
  std::vector<int64_t> supplemental_groups;                      // pod level only
};

struct Container {
  std::string name, image;  // image is optional: pilus runs `command` directly in the pod's netns
  std::vector<std::string> command, args;
  std::string working_dir;  // "" : / (there is no image to say otherwise)
  std::vector<ContainerPort> ports;
  std::vector<std::pair<std::string, std::string>> env;  // in manifest order, names unique
  SecurityContext security_context;
};

struct Pod {
  static constexpr std::string_view kKind = "Pod";
  std::string name, ns;
  std::map<std::string, std::string> labels, annotations;
  std::vector<Container> containers;  // at least one
  SecurityContext security_context;   // spec.securityContext
  std::string node_name;              // spec.nodeName, "" when absent (for clusters)
  std::string service_account;        // spec.serviceAccountName, "" when absent; an identity label as in Cilium
  std::string runtime_class;          // spec.runtimeClassName; kRuntimeClassCni: run by a container runtime (CNI)
};

// spec.runtimeClassName of a Pod whose containers an external runtime runs (podman through
// pilus-cni): applying it gives labels to the runtime's container of that namespace and name,
// and creates no network or process of its own.
inline constexpr std::string_view kRuntimeClassCni = "pilus-cni";

// Strict: unknown fields, wrong types and invalid names are errors naming the field.
// spec.restartPolicy is accepted (Always/OnFailure/Never) but pilus never restarts a command.
Pod parse_pod(const Document& d);

// What a container runs as: its securityContext over the pod's (root when neither says).
struct EffectiveUser {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> supplemental_groups;
};
EffectiveUser effective_user(const Pod& pod, const Container& c);

// The capabilities a container's processes may hold, in containerd's order: the default
// set; add ALL; drop ALL; then each add; then each drop. privileged: all of them.
std::vector<int> effective_capabilities(const Container& c);

}  // namespace pilus::manifest
