// pilus-cni: the CNI plugin (spec 1.0.0, and STATUS/GC of 1.1.0) that hands a runtime's container
// to the running pilus agent. The network configuration names the agent's socket:
//   {"cniVersion": "1.0.0", "name": "pilus", "type": "pilus-cni",
//    "socket": "/run/pilus/pilus.sock",                      (default)
//    "podmanDatabase": "/var/lib/containers/storage/libpod/bolt_state.db"}   (default; "" : none)
// The pod's namespace and name come from CNI_ARGS (K8S_POD_NAMESPACE, default "default", and
// K8S_POD_NAME, which podman sets to the container's name); its own labels from podman's
// database, or from the CNI convention "args": {"cni": {"labels": [{"key", "value"}]}}.
#pragma once

#include <map>
#include <string>

namespace pilus::cni {

struct Invocation {
  std::map<std::string, std::string> env;  // CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, ...
  std::string stdin_text;                   // the network configuration
};

struct Outcome {
  int exit_code = 0;
  std::string stdout_text;  // the result, or the error JSON
};

Outcome run_plugin(const Invocation& in);

}  // namespace pilus::cni
