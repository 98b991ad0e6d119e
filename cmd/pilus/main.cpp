// pilus: the agent daemon and its command-line client in one binary.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/cleanup.h"
#include "agent/run_agent.h"
#include "cli/client_commands.h"
#include "cli/get_command.h"
#include "cli/observe_command.h"
#include "common/error.h"
#include "endpoint/pod_init.h"

namespace {

constexpr const char* kVersion = "0.1.0";

// CLI11 reports an unknown command as "A subcommand is required"; say what was typed, as kubectl
// does, and list the commands. Returns the first argument that is neither an option nor a command.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--socket") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == a) return "";
    return a;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // Internal: the agent starts every pod's init as `pilus pod-init SPEC_FD STATUS_FD`.
  if (argc == 4 && argv[1] == pilus::endpoint::kPodInitCommand)
    return pilus::endpoint::pod_init_main(std::atoi(argv[2]), std::atoi(argv[3]));
  CLI::App app{"pilus: eBPF networking, security and observability for Linux pods"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the command name
  app.set_version_flag("--version", std::string("pilus version ") + kVersion);
  auto* version = app.add_subcommand("version", "print the version of pilus");

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
  agent->add_option("--enable-hubble", config.enable_hubble,
                    "decode the datapath's events into flows (false: the events ring is left unread)");
  agent->add_option("--node-name", config.node_name, "node name shown in flows (default: host name)");
  agent->add_option("--service-cidr", config.service_cidr, "service VIPs (ClusterIP) are taken from here");
  agent->add_option("--maglev-table-size", config.maglev_size, "Maglev slots per service port (a prime)");
  agent->add_option("--lb-algorithm", config.lb_algorithm, "backend choice: maglev or random");
  agent->add_option("--lb-max-services", config.lb_max_services, "service ports (VIP, port, protocol) the LB maps hold");
  agent->add_option("--api-max-connections", config.api_max_connections, "open connections the API socket serves")
      ->check(CLI::PositiveNumber);
  agent->add_option("--metrics-max-connections", config.metrics_max_connections,
                    "open connections the metrics port serves")
      ->check(CLI::PositiveNumber);
  agent->add_option("--api-header-timeout", config.api_header_timeout_s,
                    "seconds a client (API or metrics) has to send a complete request header")
      ->check(CLI::PositiveNumber);
  agent->add_option("--api-idle-timeout", config.api_idle_timeout_s,
                    "seconds a request body or a response may go without progress (API and metrics)")
      ->check(CLI::PositiveNumber);
  agent->add_option("--api-max-request-bytes", config.api_max_request_bytes,
                    "largest request body (apply/delete manifests) the API takes; larger: 413")
      ->check(CLI::PositiveNumber);
  agent->add_option("--proxy-max-connections", config.proxy_max_connections,
                    "L7 proxy client connections, all pods together")->check(CLI::PositiveNumber);
  agent->add_option("--proxy-max-connections-per-identity", config.proxy_max_connections_per_identity,
                    "L7 proxy client connections one pod identity may hold")->check(CLI::PositiveNumber);

  std::vector<std::string> files;
  std::string dry_run = "none";
  auto* apply = app.add_subcommand("apply", "create or update objects from manifests");
  apply->add_option("-f,--filename", files, "file, directory or - for stdin")->required();
  apply->add_option("-o,--output", client.output, "json, yaml or name");
  apply->add_option("--dry-run", dry_run, "server: validate and show what would change, changing nothing (none, server, client)")
      ->expected(0, 1)
      ->default_str("none");
  auto* del = app.add_subcommand("delete", "delete the objects named in manifests");
  del->add_option("-f,--filename", files, "file, directory or - for stdin")->required();
  del->add_option("-o,--output", client.output, "table or json");

  pilus::cli::GetOptions get_opts;
  auto* get = app.add_subcommand("get", "list pods, services, endpoints, identities, namespaces or policies");
  get->add_option("kind", get_opts.kind, "pods | services | endpoints | identities | namespaces | policies")->required();
  get->add_option("name", get_opts.names, "only these");
  get->add_option("-o,--output", client.output, "json, yaml, wide or name");
  auto* get_ns = get->add_option("-n,--namespace", get_opts.ns, "namespace (default: default)");
  get->add_flag("-A,--all-namespaces", get_opts.all_namespaces, "every namespace")->excludes(get_ns);
  get->add_option("-l,--selector", get_opts.selector, "label selector: app=web, app!=web, app in (a,b), app, !app");

  bool verbose = false;
  auto* status = app.add_subcommand("status", "agent health, kernel features, counts, map pressure");
  status->add_flag("--verbose", verbose, "list every kernel feature probed");
  status->add_option("-o,--output", client.output, "table or json");

  std::string map, verb = "list", bpf_pod;
  auto* bpf = app.add_subcommand("bpf", "raw datapath state: ct | ipcache | endpoints | policy | lb");
  bpf->add_option("map", map, "ct | ipcache | endpoints | policy | lb")->required();
  bpf->add_option("verb", verb, "list (get for policy)");
  bpf->add_option("pod", bpf_pod, "for policy: NAMESPACE/POD; for ct: global (the one table)");

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
  // Cilium's flags: -s/-d labels, --src-k8s-pod/--dst-k8s-pod NAMESPACE:POD.
  std::vector<std::string> src_cilium_labels, dst_cilium_labels;
  std::string src_k8s_pod, dst_k8s_pod;
  auto* src_opt = trace->add_option("-s,--src", src_cilium_labels, "source labels, as Cilium: k8s:app=frontend (repeatable)")
                      ->delimiter(',');
  auto* dst_opt = trace->add_option("-d,--dst", dst_cilium_labels, "destination labels, as Cilium: k8s:app=backend")
                      ->delimiter(',');
  auto* src_pod_opt = trace->add_option("--src-k8s-pod", src_k8s_pod, "source pod, as Cilium: NAMESPACE:POD");
  auto* dst_pod_opt = trace->add_option("--dst-k8s-pod", dst_k8s_pod, "destination pod, as Cilium: NAMESPACE:POD");
  for (auto* a : {from_opt, from_labels, src_opt, src_pod_opt})
    for (auto* b : {from_opt, from_labels, src_opt, src_pod_opt})
      if (a != b) a->excludes(b);
  for (auto* a : {to_opt, to_labels, dst_opt, dst_pod_opt})
    for (auto* b : {to_opt, to_labels, dst_opt, dst_pod_opt})
      if (a != b) a->excludes(b);
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
      "Options: -f/--follow, --last N, --first N, --all, -o compact|json|jsonpb|table, --print-node-name, "
      "--time-format StampMilli|RFC3339|RFC3339Milli|RFC3339Micro|RFC3339Nano|RFC1123Z|YearMonthDay..., and "
      "hubble observe's filters: --pod, --from-pod, --to-pod, -n/--namespace, -A/--all-namespaces, "
      "-l/--label, --from-label, --to-label, --ip, --from-ip, --to-ip, --port, --verdict, --protocol, "
      "-t/--type (trace, drop, policy-verdict, l7, with :SUBTYPE), --drop-reason, --since, --until, --not");

  auto* cleanup = app.add_subcommand("cleanup", "remove everything pilus created on this node");
  cleanup->add_option("--state-dir", config.state_dir, "state directory of the agent to clean up after");

  if (std::string typed = unknown_command(app, argc, argv); !typed.empty()) {
    std::string known;
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      known += (known.empty() ? "" : ", ") + sub->get_name();
    std::cerr << "Error: unknown command \"" << typed << "\" for \"pilus\"\nCommands: " << known
              << "\nRun 'pilus --help' for usage.\n";
    return 1;
  }
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("pilus"));  // stdout is for command output
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(log_level));
  try {
    if (*agent) {
      config.socket = client.socket;
      return pilus::agent::run_agent(config);
    }
    if (*version) {
      std::cout << "pilus version " << kVersion << "\n";
      return 0;
    }
    // `--dry-run` alone is kubectl's old spelling of --dry-run=client.
    if (*apply) return pilus::cli::apply_command(client, files, false, dry_run.empty() ? "client" : dry_run);
    if (*del) return pilus::cli::apply_command(client, files, true);
    if (*get) return pilus::cli::get_command(client, get_opts);
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
      if (!src_cilium_labels.empty()) trace_from = pilus::cli::trace_end_from_cilium_labels(src_cilium_labels);
      if (!dst_cilium_labels.empty()) trace_to = pilus::cli::trace_end_from_cilium_labels(dst_cilium_labels);
      if (!src_k8s_pod.empty()) trace_from = pilus::cli::trace_end_from_k8s_pod(src_k8s_pod);
      if (!dst_k8s_pod.empty()) trace_to = pilus::cli::trace_end_from_k8s_pod(dst_k8s_pod);
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
