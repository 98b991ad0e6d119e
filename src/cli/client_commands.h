// The CLI's client commands: each talks to the agent's API and prints the
// answer as a table or as JSON (-o json).
#pragma once

#include <string>
#include <vector>

namespace pilus::cli {

struct ClientOptions {
  std::string socket;
  std::string output = "table";  // table | json | yaml (and a command's own: wide, name, compact ...)
};

// dry_run: "none", "server" (validate and plan against the live state, change nothing) or
// "client" (the same here: only the agent knows the state). Warnings go to stderr as kubectl's.
int apply_command(const ClientOptions& o, const std::vector<std::string>& files, bool remove,
                  const std::string& dry_run = "none");
int status_command(const ClientOptions& o, bool verbose);
int bpf_command(const ClientOptions& o, const std::string& map, const std::string& pod);
// One end of `policy trace`: a pod or address, or labels (k=v, repeatable or comma-separated) of a
// pod that need not exist, in namespace ns (default "default").
struct TraceEnd {
  std::string target;
  std::vector<std::string> labels;
  std::string ns;
};
// Cilium's `policy trace` ends: -s/-d labels ("k8s:app=web", "any:app=web", "app=web"; the
// label k8s:io.kubernetes.pod.namespace gives the namespace) and --src-k8s-pod NAMESPACE:POD.
TraceEnd trace_end_from_cilium_labels(const std::vector<std::string>& labels);
TraceEnd trace_end_from_k8s_pod(const std::string& namespace_colon_pod);
int policy_trace_command(const ClientOptions& o, const TraceEnd& from, const TraceEnd& to, const std::string& dport);

}  // namespace pilus::cli
