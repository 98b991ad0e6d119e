// The agent's HTTP/1.1 + JSON API server (Unix socket for the API, TCP for metrics), on Boost.Beast.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/percent_encoding.h"

namespace pilus::api {

struct Request {
  std::string method;  // "GET", "POST", ...
  // Without the query string and not percent-decoded, so an encoded '/' cannot fool prefix routes.
  std::string path;
  // Decoded ('+' is a space); repeated keys keep their order (?pod=a&pod=b); "?flag" gives {"flag": [""]}.
  std::map<std::string, std::vector<std::string>> query;
  std::string body;

  // First value of key, or fallback when the key is absent.
  std::string query_value(const std::string& key, const std::string& fallback = "") const;
  bool has_query(const std::string& key) const { return query.count(key) > 0; }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;

  static Response json(const nlohmann::json& j, int status = 200);
  static Response error(int status, const std::string& message);  // body {"error": message}
};

// Writes one chunk to a streaming response; returns false once the client has gone away or the
// server is stopping. An empty chunk writes nothing and only reports whether the stream is still
// alive, including whether the client has closed its end: use it as a heartbeat while waiting.
using StreamWriter = std::function<bool(std::string_view chunk)>;
// Non-const so a handler may move a large body out (e.g. to free it before parsing what it holds).
using Handler = std::function<Response(Request&)>;
using StreamHandler = std::function<void(const Request&, const StreamWriter&)>;

using pilus::percent_decode;
using pilus::percent_encode;

// What one server accepts from its clients, so that a slow or greedy client (or many) cannot
// exhaust the agent's descriptors or keep others out.
struct ServerLimits {
  // Open connections and streams together. At the cap, a new connection closes the one that has
  // waited longest for its request to begin or complete (reason "evicted"); if none is waiting,
  // the new one is answered 503 and closed ("connection_limit").
  size_t max_connections = 256;
  // From the connection (or the previous response) to a complete request header ("header_timeout").
  std::chrono::milliseconds header_timeout{10000};
  // Longest a request body read or a response write may go without progress ("idle_timeout").
  std::chrono::milliseconds idle_timeout{30000};
  std::uint64_t max_body = 64ull << 20;  // larger: 413 ("request_too_large")
};

// Why a server closed or refused a connection; counted, see refusals().
inline constexpr const char* kRefusalReasons[] = {"connection_limit", "evicted", "header_timeout",
                                                  "idle_timeout", "request_too_large", "descriptor_limit"};

// Threading and handler contract:
// - Routes must be registered before start().
// - Handlers run on server threads, concurrently with each other. A thrown pilus::Error (or a JSON
//   parse error) answers 400 {"error": what()}, any other exception 500.
// - Connections are read and written on one I/O thread, asynchronously: a slow or half-sent
//   request holds no thread. Plain handlers run, once their request is complete, on a pool of
//   start(threads) threads that does no I/O; a handler that never returns blocks a pool thread,
//   and stop() waits for it.
// - Each stream runs on its own thread, answered with chunked transfer encoding (content type
//   application/x-ndjson unless given), and its connection is closed when the handler returns. Nothing is sent
//   until the first non-empty chunk, so a handler that throws before writing still gets a proper
//   400/500; one that throws later cuts the stream without the final chunk (the client sees an error).
// - Shutdown: after stop() begins, every writer returns false and blocked writes are interrupted.
//   A stream handler that waits for data must wake regularly (wait with a timeout of about a
//   second, then call writer("") and return if it is false) or be woken by an on_stop() callback.
//   stop() waits for stream handlers at most stop_grace (default 3 s); handlers still running
//   then are detached with an error log, so they must not touch the server afterwards.
class HttpServer {
 public:
  // Listens on a Unix socket path: the parent directory is created 0755 if missing, a stale socket
  // file is replaced (but not one that a live server answers on), and the socket is chmod 0600.
  // The destructor removes the socket file unless another server has replaced it since.
  static std::unique_ptr<HttpServer> unix_socket(const std::string& path);
  // Listens on TCP "host:port" ("[::1]:port" for IPv6). Port 0 picks an ephemeral port; port() tells.
  static std::unique_ptr<HttpServer> tcp(const std::string& host_port);

  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void handle(const std::string& method, const std::string& path, Handler h);          // exact path
  void handle_prefix(const std::string& method, const std::string& prefix, Handler h);  // longest prefix, after exact
  // Exact path; the chunks are sent with content_type (NDJSON by default, or one JSON document in pieces).
  void handle_stream(const std::string& method, const std::string& path, StreamHandler h,
                     const std::string& content_type = "application/x-ndjson");

  // Called at the beginning of stop(), e.g. to wake stream handlers waiting on a condition variable.
  void on_stop(std::function<void()> callback);
  void set_stop_grace(std::chrono::milliseconds grace);
  void set_limits(const ServerLimits& limits);  // before start()

  // Connections closed or refused so far, by reason (every kRefusalReasons entry, zeros included).
  std::map<std::string, std::uint64_t> refusals() const;
  size_t connections() const;  // open connections and streams

  void start(int threads = 4);  // returns at once; serves in background threads (threads: handler pool); at most once
  void stop();                  // closes the listener and all connections, joins threads; idempotent
  uint16_t port() const;        // TCP port (0 for a Unix socket)
  const std::string& address() const { return address_; }  // socket path or host:port, for logs

  struct State;  // implementation detail, shared with connection and stream threads

 private:
  HttpServer();
  std::shared_ptr<State> state_;
  std::string address_;
};

}  // namespace pilus::api
