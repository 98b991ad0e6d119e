// Kernel capabilities pilus relies on, probed at agent start and shown by
// `pilus status`; a missing required one stops the agent with a clear message.
#pragma once

#include <string>
#include <vector>

namespace pilus::datapath {

struct KernelFeature {
  std::string name;      // e.g. "prog_type sched_cls", "helper bpf_redirect"
  bool required = false; // needed by what is built today
  bool available = false;
};

std::vector<KernelFeature> probe_kernel_features();

// Throws pilus::Error listing every missing required feature.
void require_kernel_features(const std::vector<KernelFeature>& features);

// Throws pilus::Error when the process lacks root / the capabilities it needs.
void require_privileges();

}  // namespace pilus::datapath
