// The CLI's client commands: each talks to the agent's API and prints the
// answer as a table or as JSON (-o json).
#pragma once

#include <string>
#include <vector>

namespace pilus::cli {

struct ClientOptions {
  std::string socket;
  std::string output = "table";  // table | json
};

int apply_command(const ClientOptions& o, const std::vector<std::string>& files, bool remove);
int get_command(const ClientOptions& o, const std::string& kind, const std::string& name);
int status_command(const ClientOptions& o, bool verbose);
int bpf_command(const ClientOptions& o, const std::string& map, const std::string& pod);
// One end of `policy trace`: a pod or address, or labels (k=v, repeatable or comma-separated) of a
// pod that need not exist, in namespace ns (default "default").
struct TraceEnd {
  std::string target;
  std::vector<std::string> labels;
  std::string ns;
};
int policy_trace_command(const ClientOptions& o, const TraceEnd& from, const TraceEnd& to, const std::string& dport);

}  // namespace pilus::cli
