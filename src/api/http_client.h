// Client of the agent's Unix-socket HTTP API, used by the CLI, the CNI plugin and tests.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "api/http_server.h"

namespace pilus::api {

// Each call opens its own connection, so one HttpClient may be used from several threads at once.
// Every method throws pilus::Error("cannot reach the pilus agent at PATH: REASON (is `pilus agent`
// running?)") when it cannot connect, and pilus::Error("lost connection to the pilus agent ...")
// when the agent goes away mid-exchange.
class HttpClient {
 public:
  explicit HttpClient(std::string unix_socket_path);

  // Any status, 4xx/5xx included, comes back as a Response; only transport failures throw.
  // path_and_query must already be encoded (see percent_encode()).
  Response request(const std::string& method, const std::string& path_and_query, const std::string& body = "");

  // Streams a response, calling on_line for every '\n'-terminated line (without the '\n'), as soon as
  // it arrives; a last line without '\n' is passed too. Stops, closing the connection, when on_line
  // returns false or the server ends the response. Non-2xx: throws pilus::Error with the body's "error".
  // after_lines, when given, runs once the lines of each read are handed over (e.g. to flush
  // output once per read instead of once per line).
  void stream_lines(const std::string& method, const std::string& path_and_query,
                    const std::function<bool(std::string_view)>& on_line, const std::string& body = "",
                    const std::function<void()>& after_lines = {});

  const std::string& socket_path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pilus::api
