// Client of the agent's Unix-socket HTTP API: one connection per call, synchronous Beast I/O.
#include "api/http_client.h"

#include <sys/un.h>

#include <cstdint>
#include <limits>
#include <utility>  // Boost 1.74 Asio needs std::exchange declared first with GCC 12

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "api/v1/errors.h"
#include "common/error.h"

namespace pilus::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = asio::local::stream_protocol::socket;

constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();

namespace {

void connect(Socket& sock, const std::string& path) {
  beast::error_code ec;
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    ec = asio::error::name_too_long;
  } else {
    sock.connect(asio::local::stream_protocol::endpoint(path), ec);
  }
  if (ec) fail("cannot reach the pilus agent at {}: {} (is `pilus agent` running?)", path, ec.message());
}

// A failed write is returned, not thrown: the agent may have answered (413) and closed before
// taking the whole body, and that answer is still there to read.
beast::error_code send_request(Socket& sock, const std::string& method, const std::string& target,
                               const std::string& body) {
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "localhost");
  req.set(http::field::user_agent, "pilus");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  beast::error_code ec;
  http::write(sock, req, ec);
  return ec;
}

// The body's "error" when it is our JSON error shape, else the status and whatever text came back.
std::string error_message(int status, const std::string& body) {
  try {
    return v1::parse<v1::ErrorBody>(body, "the agent's answer").error;
  } catch (const Error&) {
  }
  return fmt::format("the agent answered HTTP {}{}{}", status, body.empty() ? "" : ": ", body);
}

}  // namespace

HttpClient::HttpClient(std::string unix_socket_path) : path_(std::move(unix_socket_path)) {}

Response HttpClient::request(const std::string& method, const std::string& path_and_query, const std::string& body) {
  asio::io_context ioc;
  Socket sock(ioc);
  connect(sock, path_);
  auto write_ec = send_request(sock, method, path_and_query, body);

  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  // Replies such as a full flow dump may be large; the agent is trusted. (Not boost::none: Beast 1.74
  // compares Content-Length against the optional and then rejects every sized body.)
  parser.body_limit(kNoLimit);
  beast::error_code ec;
  http::read(sock, buf, parser, ec);
  if (ec) fail("lost connection to the pilus agent at {}: {}", path_, (write_ec ? write_ec : ec).message());
  auto& msg = parser.get();
  Response r;
  r.status = msg.result_int();
  r.content_type = std::string(msg[http::field::content_type]);
  r.body = std::move(msg.body());
  return r;
}

void HttpClient::stream_lines(const std::string& method, const std::string& path_and_query,
                              const std::function<bool(std::string_view)>& on_line, const std::string& body,
                              const std::function<void()>& after_lines) {
  asio::io_context ioc;
  Socket sock(ioc);
  connect(sock, path_);
  if (auto ec = send_request(sock, method, path_and_query, body))
    fail("lost connection to the pilus agent at {}: {}", path_, ec.message());

  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(kNoLimit);  // a followed stream has no end
  beast::error_code ec;
  http::read_header(sock, buf, parser, ec);
  if (ec) fail("lost connection to the pilus agent at {}: {}", path_, ec.message());
  int status = parser.get().result_int();
  bool ok = status >= 200 && status < 300;

  std::string pending;  // a partial line when ok, the whole error body otherwise
  char chunk[16384];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // read_some, not read: read would wait for the buffer to fill, delaying lines indefinitely.
    http::read_some(sock, buf, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) fail("lost connection to the pilus agent at {}: {}", path_, ec.message());
    pending.append(chunk, sizeof chunk - parser.get().body().size);
    if (!ok) continue;
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!on_line(std::string_view(pending).substr(start, nl - start))) return;  // closing the socket tells the agent
    }
    pending.erase(0, start);
    if (after_lines) after_lines();
  }
  if (!ok) throw Error(error_message(status, pending));
  if (!pending.empty()) on_line(pending);
}

}  // namespace pilus::api
