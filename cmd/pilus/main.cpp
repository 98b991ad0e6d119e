// pilus: the agent daemon and its command-line client in one binary.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/cleanup.h"
#include "agent/run_agent.h"
#include "cli/client_commands.h"
#include "cli/observe_command.h"
#include "common/error.h"
#include "endpoint/pod_init.h"

int main(int argc, char** argv) {
  // Internal: the agent starts every pod's init as `pilus pod-init SPEC_FD STATUS_FD`.
  if (argc == 4 && argv[1] == pilus::endpoint::kPodInitCommand)
    return pilus::endpoint::pod_init_main(std::atoi(argv[2]), std::atoi(argv[3]));
  CLI::App app{"pilus: eBPF networking, security and observability for Linux pods"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the command name

  pilus::cli::ClientOptions client;
  const char* env_socket = std::getenv("PILUS_SOCKET");
  client.socket = env_socket ? env_socket : "/run/pilus/pilus.sock";
  app.add_option("--socket", client.socket, "agent API socket (also PILUS_SOCKET)");

  pilus::agent::AgentConfig config;
  std::string log_level = "info";
  auto* agent = app.add_subcommand("agent", "run the agent (root) in the foreground");
  agent->add_option("--state-dir", config.state_dir, "desired state directory");
  agent->add_option("--pod-cidr", config.pod_cidr, "this node's pod CIDR");
  agent->add_option("--bpf-root", config.bpf_root, "where maps and programs are pinned");
  agent->add_option("--host-device", config.host_device, "name of the node-side dummy link");
  agent->add_option("--cgroup", config.cgroup, "cgroup (under the cgroup2 mount) for pod processes");
  agent->add_option("--metrics-addr", config.metrics_addr, "Prometheus metrics address (empty: none)");
  agent->add_option("--ct-max", config.ct_max, "conntrack map size");
  agent->add_option("--policy-map-max", config.policy_max, "policy map size (entries, all pods together)");
  agent->add_option("--event-buffer", config.event_buffer_bytes,
                    "bytes of the datapath's events ring buffer (a power of two)");
  agent->add_option("--ct-gc-interval", config.ct_gc_interval_s, "seconds between conntrack GC runs");
  agent->add_option("--log-level", log_level, "trace, debug, info, warn, error");
  agent->add_option("--flow-buffer", config.flow_buffer, "flows kept for pilus observe");
  agent->add_option("--node-name", config.node_name, "node name shown in flows (default: host name)");
  agent->add_option("--service-cidr", config.service_cidr, "service VIPs (ClusterIP) are taken from here");
  agent->add_option("--maglev-table-size", config.maglev_size, "Maglev slots per service port (a prime)");
  agent->add_option("--lb-algorithm", config.lb_algorithm, "backend choice: maglev or random");
  agent->add_option("--lb-max-services", config.lb_max_services, "service ports (VIP, port, protocol) the LB maps hold");

  std::vector<std::string> files;
  auto* apply = app.add_subcommand("apply", "create or update objects from manifests");
  apply->add_option("-f,--filename", files, "file, directory or - for stdin")->required();
  apply->add_option("-o,--output", client.output, "table or json");
  auto* del = app.add_subcommand("delete", "delete the objects named in manifests");
  del->add_option("-f,--filename", files, "file, directory or - for stdin")->required();
  del->add_option("-o,--output", client.output, "table or json");

  std::string kind, name;
  auto* get = app.add_subcommand("get", "list pods, services, endpoints, identities, namespaces or policies");
  get->add_option("kind", kind, "pods | services | endpoints | identities | namespaces | policies")->required();
  get->add_option("name", name, "only this one");
  get->add_option("-o,--output", client.output, "table or json");

  bool verbose = false;
  auto* status = app.add_subcommand("status", "agent health, kernel features, counts, map pressure");
  status->add_flag("--verbose", verbose, "list every kernel feature probed");
  status->add_option("-o,--output", client.output, "table or json");

  std::string map, verb = "list", bpf_pod;
  auto* bpf = app.add_subcommand("bpf", "raw datapath state: ct | ipcache | endpoints | policy | lb");
  bpf->add_option("map", map, "ct | ipcache | endpoints | policy | lb")->required();
  bpf->add_option("verb", verb, "list (get for policy)");
  bpf->add_option("pod", bpf_pod, "for policy: NAMESPACE/POD");

  pilus::cli::TraceEnd trace_from, trace_to;
  std::string trace_dport = "80/tcp";
  auto* policy = app.add_subcommand("policy", "policy tools");
  auto* trace = policy->add_subcommand("trace", "would this traffic be allowed, and by which rule?");
  policy->require_subcommand(1);
  auto* from_opt = trace->add_option("--from", trace_from.target, "source pod (namespace/name) or address");
  auto* from_labels = trace->add_option("--from-labels", trace_from.labels,
                                        "source: a pod with these labels (k=v, repeatable), existing or not")
                          ->delimiter(',');
  trace->add_option("--from-namespace", trace_from.ns, "namespace of the --from-labels pod (default: default)");
  auto* to_opt = trace->add_option("--to", trace_to.target, "destination pod (namespace/name) or address");
  auto* to_labels = trace->add_option("--to-labels", trace_to.labels,
                                      "destination: a pod with these labels (k=v, repeatable), existing or not")
                        ->delimiter(',');
  trace->add_option("--to-namespace", trace_to.ns, "namespace of the --to-labels pod (default: default)");
  from_opt->excludes(from_labels);
  to_opt->excludes(to_labels);
  trace->add_option("--dport", trace_dport, "PORT/PROTO, e.g. 80/tcp");
  trace->add_option("-o,--output", client.output, "table or json");
  bpf->add_option("-o,--output", client.output, "table or json");

  pilus::cli::ObserveOptions observe_opts;
  auto* observe = app.add_subcommand("observe", "flows, with hubble observe's filters (--pod, --verdict, --not ...)");
  // Filters are order-sensitive (--not negates the next one), so observe
  // takes its arguments as they were typed and parses them itself.
  observe->prefix_command();
  observe->fallthrough(false);
  observe->footer(
      "Options: -f/--follow, --last N, --all, -o compact|json|table, and hubble observe's filters: --pod, "
      "--from-pod, --to-pod, --namespace, --label, --from-label, --to-label, --ip, --from-ip, --to-ip, --port, "
      "--verdict, --protocol, --type, --drop-reason, --since, --until, --not");

  auto* cleanup = app.add_subcommand("cleanup", "remove everything pilus created on this node");
  cleanup->add_option("--state-dir", config.state_dir, "state directory of the agent to clean up after");

  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("pilus"));  // stdout is for command output
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(log_level));
  try {
    if (*agent) {
      config.socket = client.socket;
      return pilus::agent::run_agent(config);
    }
    if (*apply) return pilus::cli::apply_command(client, files, false);
    if (*del) return pilus::cli::apply_command(client, files, true);
    if (*get) return pilus::cli::get_command(client, kind, name);
    if (*status) return pilus::cli::status_command(client, verbose);
    if (*bpf) {
      if (map == "policy") {
        if (verb != "get") pilus::fail("usage: pilus bpf policy get NAMESPACE/POD");
      } else if (verb != "list") {
        pilus::fail("unknown verb \"{}\" for `pilus bpf {}` (known: list)", verb, map);
      }
      return pilus::cli::bpf_command(client, map, bpf_pod);
    }
    if (*trace) {
      return pilus::cli::policy_trace_command(client, trace_from, trace_to, trace_dport);
    }
    if (*observe) {
      client.output = "compact";
      pilus::cli::parse_observe_args(observe->remaining(), observe_opts, client);
      return pilus::cli::observe_command(client, observe_opts);
    }
    if (*cleanup) {
      config.socket = client.socket;
      for (const auto& line : pilus::agent::cleanup(config)) std::cout << line << "\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
