#include "cli/observe_command.h"

#include <iostream>
#include <variant>

#include "api/http_client.h"
#include "api/v1/routes.h"
#include "common/error.h"
#include "observe/flow_filter.h"
#include "observe/flow_format.h"
#include "observe/flow_json.h"
#include "observe/flow_time.h"

namespace pilus::cli {

void parse_observe_args(const std::vector<std::string>& argv, ObserveOptions& opts, ClientOptions& client) {
  for (size_t i = 0; i < argv.size(); i++) {
    const std::string& a = argv[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (auto eq = a.find('='); eq != std::string::npos) return a.substr(eq + 1);
      if (i + 1 >= argv.size()) fail("{} needs a value", flag);
      return argv[++i];
    };
    auto is = [&](const char* flag) { return a == flag || a.rfind(std::string(flag) + "=", 0) == 0; };
    auto count = [&](const char* flag) {
      std::string v = value(flag);
      int n = -1;
      try {
        size_t used = 0;
        n = std::stoi(v, &used);
        if (used != v.size()) n = -1;
      } catch (...) {
      }
      if (n < 0) fail("{}: \"{}\" is not a count", flag, v);
      return n;
    };
    // hubble's short filter flags, passed on in their long spelling.
    if (a == "-n" || a == "-t" || a == "-l") {
      if (i + 1 >= argv.size()) fail("{} needs a value", a);
      const char* long_name = a == "-n" ? "--namespace" : a == "-t" ? "--type" : "--label";
      opts.filter_args.push_back(long_name);
      opts.filter_args.push_back(argv[++i]);
      continue;
    }
    if (a == "-A" || a == "--all-namespaces") {
      opts.all_namespaces = true;
    } else if (is("--first")) {
      opts.first = count("--first");
    } else if (a == "--print-node-name") {
      opts.print_node_name = true;
    } else if (is("--time-format")) {
      opts.time_format = value("--time-format");
      observe::parse_time_format(opts.time_format);  // refused here, naming the known ones
    } else if (a == "-f" || a == "--follow") {
      opts.follow = true;
    } else if (a == "--all") {
      opts.all = true;
    } else if (is("--last")) {
      opts.last = count("--last");
    } else if (a == "-o" || is("--output")) {
      client.output = value("--output");
    } else if (is("--socket")) {
      client.socket = value("--socket");
    } else {
      opts.filter_args.push_back(a);
    }
  }
}

int observe_command(const ClientOptions& o, const ObserveOptions& opts) {
  auto split = observe::split_filter_args(opts.filter_args);
  if (!split.rest.empty()) fail("unknown observe argument \"{}\"", split.rest.front());
  if (opts.first >= 0 && (opts.last >= 0 || opts.all || opts.follow))
    fail("--first cannot be combined with --last, --all or --follow");
  if (opts.all_namespaces)
    for (const auto& f : split.filters)
      if (f.flag == "namespace") fail("-A/--all-namespaces and -n/--namespace cannot be combined");
  // Fail on bad filters here, with the flag named, before asking the agent.
  observe::FlowFilter::parse(split.filters);
  std::string query = observe::to_query_string(split.filters);
  auto add = [&](const std::string& kv) { query += (query.empty() ? "" : "&") + kv; };
  if (opts.follow) add("follow");
  if (opts.all) add("all");
  if (opts.last >= 0) add("last=" + std::to_string(opts.last));
  if (opts.first >= 0) add("first=" + std::to_string(opts.first));
  observe::FormatOptions format_options;
  format_options.node_name = opts.print_node_name;
  format_options.time_format = observe::parse_time_format(opts.time_format);

  observe::OutputFormat format = observe::parse_output_format(o.output == "table" && opts.follow ? "compact"
                                                              : o.output.empty()                 ? "compact"
                                                                                                 : o.output);
  std::vector<observe::Flow> table_rows;
  api::HttpClient client(o.socket);
  client.stream_lines("GET", std::string(api::v1::path::kFlows) + "?" + query, [&](std::string_view line) {
    if (format == observe::OutputFormat::Json) {  // json and jsonpb: the stream as the agent sends it
      std::cout << line << '\n';  // flushed once per read (below), not per line
      return true;
    }
    auto item = observe::parse_stream_line(line);
    if (const auto* flow = std::get_if<observe::Flow>(&item)) {
      if (format == observe::OutputFormat::Table)
        table_rows.push_back(*flow);
      else
        std::cout << observe::format_compact(*flow, format_options) << '\n';
    } else {
      std::cout << observe::format_compact(std::get<observe::LostEvents>(item), format_options) << '\n';
    }
    return true;
  }, "", [] { std::cout.flush(); });
  if (format == observe::OutputFormat::Table) std::cout << observe::format_table(table_rows, format_options);
  return 0;
}

}  // namespace pilus::cli
