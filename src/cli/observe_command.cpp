#include "cli/observe_command.h"

#include <iostream>
#include <variant>

#include "api/http_client.h"
#include "common/error.h"
#include "observe/flow_filter.h"
#include "observe/flow_format.h"
#include "observe/flow_json.h"

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
    if (a == "-f" || a == "--follow") {
      opts.follow = true;
    } else if (a == "--all") {
      opts.all = true;
    } else if (is("--last")) {
      std::string v = value("--last");
      try {
        opts.last = std::stoi(v);
      } catch (...) {
        opts.last = -1;
      }
      if (opts.last < 0) fail("--last: \"{}\" is not a count", v);
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
  // Fail on bad filters here, with the flag named, before asking the agent.
  observe::FlowFilter::parse(split.filters);
  std::string query = observe::to_query_string(split.filters);
  auto add = [&](const std::string& kv) { query += (query.empty() ? "" : "&") + kv; };
  if (opts.follow) add("follow");
  if (opts.all) add("all");
  if (opts.last >= 0) add("last=" + std::to_string(opts.last));

  observe::OutputFormat format = observe::parse_output_format(o.output == "table" && opts.follow ? "compact"
                                                              : o.output.empty()                 ? "compact"
                                                                                                 : o.output);
  std::vector<observe::Flow> table_rows;
  api::HttpClient client(o.socket);
  client.stream_lines("GET", "/v1/flows?" + query, [&](std::string_view line) {
    if (format == observe::OutputFormat::Json) {
      std::cout << line << "\n" << std::flush;
      return true;
    }
    auto item = observe::parse_stream_line(line);
    if (const auto* flow = std::get_if<observe::Flow>(&item)) {
      if (format == observe::OutputFormat::Table)
        table_rows.push_back(*flow);
      else
        std::cout << observe::format_compact(*flow) << "\n" << std::flush;
    } else {
      std::cout << observe::format_compact(std::get<observe::LostEvents>(item)) << "\n" << std::flush;
    }
    return true;
  });
  if (format == observe::OutputFormat::Table) std::cout << observe::format_table(table_rows);
  return 0;
}

}  // namespace pilus::cli
