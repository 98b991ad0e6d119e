// The agent's transparent HTTP/1.1 proxy. The datapath DNATs the connections
// that L7 policy covers to it (bpf/lib/proxy.h); for each accepted connection
// it asks where the client was going, then checks every request against the
// policy in force when it arrives (both ends': the server's ingress and the
// client's egress, at L3/L4 and by their HTTP rules), on its normalized target
// (http_target.h): allowed requests go to the original server over one
// kept-alive upstream connection, marked with the client's address so the
// server's datapath judges it as the client (upstream_mark.h), which outlives
// the client connection in a pool, reused only by the same client (address,
// mark and identity) to the same server under the same policy; denied ones get
// 403 "Access denied" and the client connection stays usable, unless L3/L4 no
// longer allows it at all (403, then closed). Framing the proxy cannot forward
// unambiguously (Transfer-Encoding other than chunked, or with Content-Length)
// gets 501/400 and the connection closed (RFC 9112). Each request and response
// is reported (flows, metrics). Sessions are coroutines on a small thread pool,
// each with its own deadlines, so a slow or hostile client only ever holds its
// own; a per-identity connection cap keeps one pod from locking others out,
// and the accept loop backs off when descriptors run out.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "endpoint/ipv4.h"
#include "proxy/l7_policy.h"

namespace pilus::proxy {

struct ProxyConfig {
  endpoint::Ipv4 listen_ip;    // the node's address on the pilus host device
  uint16_t port = 0;           // 0: the kernel picks one
  unsigned threads = 2;
  size_t header_limit = 64 * 1024;        // larger: 431
  uint64_t body_limit = 64 * 1024 * 1024;  // larger: 413
  size_t max_connections = 4096;
  size_t max_connections_per_identity = 512;  // one client identity's share; more are closed at once
  std::chrono::milliseconds header_timeout{10000};  // first byte to end of headers: slowloris bound
  std::chrono::milliseconds idle_timeout{60000};    // between requests on a kept-alive connection
  std::chrono::milliseconds body_timeout{30000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds upstream_timeout{30000};  // waiting for the server's response
  // Idle upstream connections kept for the next connection of the same client (see
  // UpstreamPool in http_proxy.cpp): per client and server, all together, and for how long.
  size_t upstream_idle_per_key = 16;
  size_t upstream_idle_total = 512;
  std::chrono::milliseconds upstream_idle_timeout{2000};
};

// One request (and its response, when it was forwarded), as flows and metrics need it.
struct HttpExchange {
  ConnectionOrigin origin;
  std::string method, url, protocol;  // "GET", "http://host/path", "HTTP/1.1"
  bool allowed = false;
  std::string policy;     // the policy that decided, when known
  unsigned status = 0;    // the status sent to the client (403 when denied, 502/503 on upstream errors)
  std::chrono::nanoseconds latency{0};  // request fully read to response headers received
  std::chrono::system_clock::time_point request_time, response_time;
  bool responded = false;  // false when the connection ended before a response
};

struct ProxyStats {
  uint64_t connections = 0;        // accepted and redirected by the datapath (redirects)
  uint64_t active_connections = 0;
  uint64_t unknown_origin = 0;     // accepted without a proxy_origin entry: closed
  uint64_t requests = 0;
  uint64_t forwarded = 0;
  uint64_t denied = 0;
  uint64_t parse_errors = 0;       // malformed requests, oversized headers or bodies
  uint64_t timeouts = 0;           // slow clients cut off
  uint64_t upstream_errors = 0;    // connect failures, dead or broken servers
  uint64_t rejected_connections = 0;  // over max_connections
  uint64_t client_aborts = 0;         // clients that closed in the middle of a request
  uint64_t identity_rejected = 0;     // over max_connections_per_identity
  uint64_t descriptors_exhausted = 0; // accept() failed for lack of descriptors (EMFILE, ENFILE): backed off
  uint64_t invalid_targets = 0;       // request targets that cannot be normalized safely: 400
  uint64_t invalid_framing = 0;       // Transfer-Encoding other than chunked, or with Content-Length: 501/400
  uint64_t upstream_connects = 0;     // connections opened to servers
  uint64_t upstream_reused = 0;       // requests sent on an idle pooled upstream connection
};

class HttpProxy {
 public:
  struct Hooks {
    // The original destination of an accepted connection (client address and port, proxy port).
    std::function<std::optional<ConnectionOrigin>(endpoint::Ipv4, uint16_t, uint16_t)> origin;
    // Called once per request when it is decided and once more when its response is sent.
    std::function<void(const HttpExchange&, bool response)> report;
  };

  // Binds and starts serving; throws pilus::Error when the address cannot be bound.
  HttpProxy(ProxyConfig config, Hooks hooks);
  ~HttpProxy();
  HttpProxy(const HttpProxy&) = delete;
  HttpProxy& operator=(const HttpProxy&) = delete;

  uint16_t port() const { return port_; }
  const ProxyConfig& config() const { return config_; }
  // New connections use the new rules; connections keep the rules they started with per request.
  void set_policy(std::shared_ptr<const L7Policy> policy);
  std::shared_ptr<const L7Policy> policy() const;
  ProxyStats stats() const;

  struct Impl;

 private:
  ProxyConfig config_;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace pilus::proxy
