// The L7 proxy in process, on loopback, without the datapath: the origin hook names a test
// server, the policy allows GET /api/.* only. Requests go over real sockets, so the parser's
// edge cases (keep-alive, pipelining, chunked bodies, limits, bad input, a dead server) are
// checked as clients will hit them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cctype>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "abi/endpoint.h"
#include "abi/metrics.h"
#include "abi/policy.h"
#include "proxy/http_proxy.h"

namespace pilus::proxy {
namespace {

const endpoint::Ipv4 kLoopback{0x7f000001};

int listen_on_loopback(uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) < 0 || listen(fd, 16) < 0) throw std::runtime_error("listen");
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// A kept-alive HTTP/1.1 server answering "ok METHOD TARGET LENGTH:BODY" to each request, the
// body read as its framing says (Content-Length or chunked), so a test sees what arrived.
class EchoServer {
 public:
  EchoServer() : fd_(listen_on_loopback(port_)) {
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        accepted++;
        std::thread([c] { serve(c); }).detach();
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::atomic<int> accepted{0};  // connections the proxy opened to it

 private:
  // Reads until `in` holds `delimiter` (returns its position) or, with an empty one, n bytes.
  static std::optional<size_t> fill(int c, std::string& in, const std::string& delimiter, size_t n = 0) {
    char buf[4096];
    for (;;) {
      if (!delimiter.empty()) {
        if (size_t at = in.find(delimiter); at != std::string::npos) return at;
      } else if (in.size() >= n) {
        return n;
      }
      ssize_t got = read(c, buf, sizeof(buf));
      if (got <= 0) return std::nullopt;
      in.append(buf, static_cast<size_t>(got));
    }
  }
  static std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }
  static void serve(int c) {
    std::string in;
    for (;;) {
      auto end = fill(c, in, "\r\n\r\n");
      if (!end) return (void)close(c);
      std::string head = in.substr(0, *end);
      in.erase(0, *end + 4);
      std::string line = head.substr(0, head.find("\r\n"));
      const std::string headers = lower(head);
      std::string body;
      if (headers.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
        for (;;) {
          auto eol = fill(c, in, "\r\n");
          if (!eol) return (void)close(c);
          size_t size = std::stoul(in.substr(0, *eol), nullptr, 16);
          in.erase(0, *eol + 2);
          if (!fill(c, in, "", size + 2)) return (void)close(c);
          body += in.substr(0, size);
          in.erase(0, size + 2);  // the chunk and its CRLF (no trailers in these tests)
          if (size == 0) break;
        }
      } else if (size_t at = headers.find("\r\ncontent-length: "); at != std::string::npos) {
        size_t length = std::stoul(headers.substr(at + 18));
        if (!fill(c, in, "", length)) return (void)close(c);
        body = in.substr(0, length);
        in.erase(0, length);
      }
      std::string answer = "ok " + line.substr(0, line.rfind(' ')) + " " + std::to_string(body.size()) + ":" + body;
      std::string out =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(answer.size()) + "\r\n\r\n" + answer;
      if (write(c, out.data(), out.size()) < 0) return (void)close(c);
    }
  }
  uint16_t port_ = 0;
  int fd_;
  std::thread thread_;
};

// A server that answers each accepted connection as its script says (connection N takes
// script[N]; past the end, the last entry): answer every request and keep the connection,
// answer one request and then close, or close on the first request without answering.
// It counts connections and the requests it answered, so a test sees whether the proxy retried.
class ScriptedServer {
 public:
  enum class Act { kServe, kAnswerOnceThenClose, kCloseWithoutAnswer };
  explicit ScriptedServer(std::vector<Act> script) : script_(std::move(script)), fd_(listen_on_loopback(port_)) {
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        Act act = script_[std::min(connections_.load(), script_.size() - 1)];
        connections_++;
        {
          std::lock_guard<std::mutex> lock(mu_);
          open_.insert(c);
        }
        workers_.emplace_back([this, c, act] { serve(c, act); });
      }
    });
  }
  ~ScriptedServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    {
      // Connections the proxy still keeps: end them, so their workers return at once.
      std::lock_guard<std::mutex> lock(mu_);
      for (int c : open_) shutdown(c, SHUT_RDWR);
    }
    for (auto& w : workers_) w.join();
  }
  uint16_t port() const { return port_; }
  size_t connections() const { return connections_; }
  size_t answered() const { return answered_; }  // counted after the answer was written: wait for it
  size_t closed() const { return closed_; }

 private:
  void serve(int c, Act act) {
    timeval tv{5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string in;
    char buf[4096];
    for (;;) {
      while (in.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) return finish(c);
        in.append(buf, static_cast<size_t>(n));
      }
      in.erase(0, in.find("\r\n\r\n") + 4);  // bodiless requests only
      if (act == Act::kCloseWithoutAnswer) return finish(c);
      static const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      if (write(c, kOk.data(), kOk.size()) < 0) return finish(c);
      answered_++;
      if (act == Act::kAnswerOnceThenClose) return finish(c);
    }
  }
  void finish(int c) {
    std::lock_guard<std::mutex> lock(mu_);  // never closed while the destructor shuts it down
    open_.erase(c);
    close(c);
    closed_++;
  }

  std::vector<Act> script_;
  uint16_t port_ = 0;
  int fd_;
  std::atomic<size_t> connections_{0}, answered_{0}, closed_{0};
  std::thread thread_;
  std::vector<std::thread> workers_;  // only the accept thread adds; joined after it ended
  std::mutex mu_;
  std::set<int> open_;  // accepted, not yet closed
};

// Polls `condition` until it holds or 30 s passed (a loaded machine may be slow; no fixed sleeps).
bool eventually(const std::function<bool()>& condition) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// The proxy with allow-api-only's rule for every connection, sent to `server_port`.
class ProxyTest : public ::testing::Test {
 protected:
  void start(uint16_t server_port) {
    ProxyConfig config = config_;
    config.listen_ip = kLoopback;
    config.header_limit = 8192;
    config.header_timeout = std::chrono::milliseconds(500);
    HttpProxy::Hooks hooks;
    hooks.origin = [this, server_port](endpoint::Ipv4 client, uint16_t client_port, uint16_t) {
      ConnectionOrigin o;
      o.client_ip = client_ip_ ? endpoint::Ipv4{client_ip_.load()} : client;
      o.client_identity = client_identity_;
      o.client_port = client_port;
      o.server_ip = kLoopback;
      o.server_port = server_port;
      o.server_endpoint = 2;
      o.ingress = true;
      return std::optional<ConnectionOrigin>(o);
    };
    hooks.report = [this](const HttpExchange& x, bool response) {
      if (response) reported_responses_++;
      else if (!x.allowed) reported_denials_++;
    };
    proxy_ = std::make_unique<HttpProxy>(config, hooks);
    server_port_ = server_port;
    start_policy_only();
  }

  // (Re)installs allow-api-only as a new policy object.
  void start_policy_only() {
    uint16_t server_port = server_port_;

    policy::PolicyRule rule;
    rule.policy_name = "allow-api-only";
    rule.policy_namespace = "default";
    rule.http = {{"GET", "/api/.*", "", {}}};
    policy::ResolvedPolicy resolved;
    policy_key key{};
    key.prefixlen = POLICY_PREFIX_FULL;
    key.endpoint_id = 2;
    key.direction = METRIC_INGRESS;
    key.protocol = IPPROTO_TCP;
    key.dport = htons(server_port);
    policy::ResolvedEntry entry;
    entry.value.proxy_port = htons(proxy_->port());
    entry.rules = {0};
    resolved.entries[key] = entry;
    proxy_->set_policy(std::make_shared<L7Policy>(resolved, std::vector<policy::PolicyRule>{rule},
                                                  std::map<endpoint::Ipv4Prefix, uint32_t>{}));
  }

  // Sends `request` on a fresh connection and returns everything read until the proxy closes
  // (or 2 s pass).
  std::string exchange(const std::string& request, bool close_after_send = false) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(proxy_->port());
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) throw std::runtime_error("connect");
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    if (close_after_send) shutdown(fd, SHUT_WR);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
  }

  static size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
    return n;
  }

  int connect_to_proxy() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(proxy_->port());
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) throw std::runtime_error("connect");
    return fd;
  }
  // One request on an open connection; returns what arrived within the read timeout, up to the
  // end of the first response body (Content-Length) or the close.
  static std::string request_on(int fd, const std::string& request) {
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return "";
    std::string out;
    char buf[4096];
    for (;;) {
      size_t head = out.find("\r\n\r\n");
      if (head != std::string::npos) {
        size_t cl = out.find("Content-Length: ");
        size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
        if (out.size() >= head + 4 + len) return out;
      }
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

  ProxyConfig config_;
  // What the origin hook says about the client: its address (0: the real peer's) and identity.
  std::atomic<uint32_t> client_ip_{0}, client_identity_{1000};
  uint16_t server_port_ = 0;
  std::unique_ptr<HttpProxy> proxy_;
  std::atomic<int> reported_responses_{0}, reported_denials_{0};
};

TEST_F(ProxyTest, AllowedRequestsReachTheServerDeniedOnesGet403OnTheSameConnection) {
  EchoServer server;
  start(server.port());
  std::string out = exchange(
      "GET /api/users HTTP/1.1\r\nHost: b\r\n\r\n"
      "POST /api/users HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nhello"
      "GET /admin HTTP/1.1\r\nHost: b\r\n\r\n"
      "GET /api/items HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(count(out, "HTTP/1.1 200 OK"), 2u) << out;
  EXPECT_EQ(count(out, "HTTP/1.1 403 Forbidden"), 2u) << out;
  EXPECT_EQ(count(out, "Access denied"), 2u) << out;
  EXPECT_NE(out.find("ok GET /api/users"), std::string::npos) << out;
  EXPECT_NE(out.find("ok GET /api/items"), std::string::npos) << out;
  EXPECT_EQ(out.find("ok POST"), std::string::npos) << "a denied request never reaches the server: " << out;
  ProxyStats s = proxy_->stats();
  EXPECT_EQ(s.forwarded, 2u);
  EXPECT_EQ(s.denied, 2u);
  EXPECT_EQ(reported_denials_.load(), 2);
}

TEST_F(ProxyTest, ChunkedRequestBodyIsForwardedWhole) {
  EchoServer server;
  start(server.port());
  std::string out = exchange(
      "GET /api/upload HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_NE(out.find("HTTP/1.1 200 OK"), std::string::npos) << out;
  EXPECT_NE(out.find("ok GET /api/upload 11:hello world"), std::string::npos) << "the body arrived whole: " << out;
}

TEST_F(ProxyTest, BadInputGetsACleanErrorAndIsCounted) {
  EchoServer server;
  start(server.port());
  EXPECT_EQ(exchange("NOT HTTP AT ALL\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(exchange("GET /api/x HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n").rfind("HTTP/1.1 431", 0), 0u);
  EXPECT_EQ(exchange("GET /api/x HTTP/1.1\r\nContent-Length: nope\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(exchange("GET /api/x HTTP/1.1\r\nHost: b\r\n", true), "") << "a client that leaves mid-request";
  EXPECT_EQ(exchange("GET /api/x HTTP/1.1\r\nHost: b\r\n"), "") << "a slow client is cut off at the deadline";
  // Counted by the session after the socket closed (Beast closes it at the deadline first): waited for.
  EXPECT_TRUE(eventually([&] {
    ProxyStats s = proxy_->stats();
    return s.parse_errors == 3 && s.client_aborts == 1 && s.timeouts == 1;
  }));
  ProxyStats s = proxy_->stats();
  EXPECT_EQ(s.parse_errors, 3u);
  EXPECT_EQ(s.client_aborts, 1u);
  EXPECT_EQ(s.timeouts, 1u);
  // Still serving.
  EXPECT_EQ(exchange("GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(ProxyTest, DeadServerGets503AndTheConnectionStaysUsable) {
  uint16_t dead_port;
  close(listen_on_loopback(dead_port));  // a port nobody listens on any more
  start(dead_port);
  std::string out = exchange(
      "GET /api/a HTTP/1.1\r\nHost: b\r\n\r\n"
      "POST /api/a HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 503", 0), 0u) << out;
  EXPECT_NE(out.find("HTTP/1.1 403"), std::string::npos) << "the next request is still answered: " << out;
  EXPECT_EQ(proxy_->stats().upstream_errors, 1u);
}

// Issue 12: paths are judged and forwarded normalized; what cannot be normalized safely is refused.
TEST_F(ProxyTest, PathIsJudgedAndForwardedNormalized) {
  EchoServer server;
  start(server.port());
  for (const char* sneaky : {"/api/../admin", "/api/%2e%2e/admin", "/api//../admin", "/api/./../admin"}) {
    std::string out = exchange(std::string("GET ") + sneaky + " HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 403", 0), 0u) << sneaky << ": " << out;
  }
  for (const char* refused : {"/api/..%2fadmin", "/api/..\\admin", "/api/..;/admin", "/api/%2E%2E%5Cadmin"}) {
    std::string out = exchange(std::string("GET ") + refused + " HTTP/1.1\r\nHost: b\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << refused << ": " << out;
    EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  }
  // What was judged is what the server gets.
  std::string out = exchange("GET /api/x/..//%75sers?a=/../b HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("ok GET /api/users?a=/../b"), std::string::npos) << out;
  out = exchange("GET http://b/api/./users HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("ok GET /api/users"), std::string::npos) << "absolute-form is forwarded as origin-form: " << out;
  // A Host that would make the flow's URL name another path.
  out = exchange("GET /admin HTTP/1.1\r\nHost: x/api/users?\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_EQ(exchange("GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(proxy_->stats().invalid_targets, 6u);
}

// Issue 12 (RFC 9112 6.1, 6.3): framing the server could read otherwise is never forwarded.
TEST_F(ProxyTest, TransferEncodingOtherThanChunkedOrWithContentLengthIsRefusedAndClosed) {
  EchoServer server;
  start(server.port());
  std::string both = exchange(
      "GET /api/a HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello"
      "GET /api/b HTTP/1.1\r\nHost: b\r\n\r\n");
  EXPECT_EQ(both.rfind("HTTP/1.1 400", 0), 0u) << both;
  EXPECT_EQ(both.find("ok GET"), std::string::npos) << "nothing reached the server: " << both;
  EXPECT_EQ(count(both, "HTTP/1.1"), 1u) << "and the connection was closed: " << both;
  std::string chunked_and_length = exchange(
      "GET /api/a HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(chunked_and_length.rfind("HTTP/1.1 400", 0), 0u) << chunked_and_length;
  for (const char* te : {"xchunked", "identity", "gzip, chunked", "chunked, chunked"}) {
    std::string out = exchange(std::string("GET /api/a HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: ") + te +
                               "\r\n\r\n0\r\n\r\nGET /api/b HTTP/1.1\r\nHost: b\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 501", 0), 0u) << te << ": " << out;
    EXPECT_EQ(out.find("ok GET"), std::string::npos) << te << ": " << out;
  }
  // Beast's parser refuses chunked with Content-Length itself (a parse error); the proxy the other five.
  EXPECT_EQ(proxy_->stats().invalid_framing, 5u);
  EXPECT_EQ(exchange("GET /api/ok HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n0\r\n\r\n")
                .rfind("HTTP/1.1 200", 0),
            0u)
      << "plain chunked still passes";
}

// Issue 12: a policy change reaches open connections; an empty entry set is not allow-all.
TEST_F(ProxyTest, ReplacedPolicyJudgesTheNextRequestOnAnOpenConnection) {
  EchoServer server;
  start(server.port());
  int fd = connect_to_proxy();
  EXPECT_EQ(request_on(fd, "GET /admin HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 403", 0), 0u);
  EXPECT_EQ(request_on(fd, "GET /api/x HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  // The new policy selects the server but admits nobody on this port.
  policy::ResolvedPolicy nobody;
  nobody.endpoints[2].flags = ENDPOINT_F_INGRESS_ENFORCED;
  proxy_->set_policy(std::make_shared<L7Policy>(nobody, std::vector<policy::PolicyRule>{},
                                                std::map<endpoint::Ipv4Prefix, uint32_t>{}));
  std::string out = request_on(fd, "GET /admin HTTP/1.1\r\nHost: b\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 403", 0), 0u) << out;
  EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  EXPECT_EQ(request_on(fd, "GET /api/x HTTP/1.1\r\nHost: b\r\n\r\n"), "") << "closed after the 403";
  close(fd);
}

// Issue 12: one client identity cannot take every proxy connection.
TEST_F(ProxyTest, ConnectionsOverTheIdentityCapAreClosedAndCounted) {
  EchoServer server;
  config_.max_connections_per_identity = 2;
  start(server.port());
  int a = connect_to_proxy(), b = connect_to_proxy();
  EXPECT_EQ(request_on(a, "GET /api/a HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(request_on(b, "GET /api/b HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  int c = connect_to_proxy();
  EXPECT_EQ(request_on(c, "GET /api/c HTTP/1.1\r\nHost: b\r\n\r\n"), "") << "the third is closed";
  close(c);
  EXPECT_EQ(proxy_->stats().identity_rejected, 1u);
  close(a);
  // Its slot comes back once the connection ends (the proxy notices the close asynchronously).
  std::string out;
  for (int attempt = 0; attempt < 100 && out.empty(); attempt++) {
    int d = connect_to_proxy();
    out = request_on(d, "GET /api/d HTTP/1.1\r\nHost: b\r\n\r\n");
    close(d);
    if (out.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  close(b);
}

// ---------------------------------------------------------------- the proxy's limits (issue 18.4)

// A body of exactly body_limit bytes is forwarded whole; one byte more gets 413 and the
// connection closed, and the server never sees that request. Chunked bodies are held to it too.
TEST_F(ProxyTest, BodyAtTheLimitPassesAndOneByteMoreGets413) {
  EchoServer server;
  config_.body_limit = 1000;
  start(server.port());
  std::string at_limit = exchange("GET /api/up HTTP/1.1\r\nHost: b\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" +
                                  std::string(1000, 'x'));
  EXPECT_EQ(at_limit.rfind("HTTP/1.1 200", 0), 0u) << at_limit;
  EXPECT_NE(at_limit.find("ok GET /api/up 1000:xxx"), std::string::npos) << "the body arrived whole: " << at_limit;

  std::string over = exchange("GET /api/up HTTP/1.1\r\nHost: b\r\nContent-Length: 1001\r\n\r\n" + std::string(1001, 'x'));
  EXPECT_EQ(over.rfind("HTTP/1.1 413", 0), 0u) << over;
  EXPECT_EQ(over.find("ok GET"), std::string::npos) << "nothing of it was forwarded: " << over;

  std::string chunk(600, 'y');
  std::string chunked = exchange("GET /api/up HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" + chunk +
                                 "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 413", 0), 0u) << "1200 bytes in two chunks: " << chunked;
  EXPECT_TRUE(eventually([&] { return proxy_->stats().parse_errors == 2; })) << "both refusals are counted";
}

// A kept-alive connection that sends nothing after a response is closed once idle_timeout
// passed (the proxy's side: EOF, not our read timeout), without counting a slow client.
TEST_F(ProxyTest, IdleKeptAliveConnectionIsClosedAfterTheIdleTimeout) {
  EchoServer server;
  config_.idle_timeout = std::chrono::milliseconds(300);
  start(server.port());
  int fd = connect_to_proxy();
  timeval tv{30, 0};  // far beyond the idle timeout: a timeout here is a failure, not the close
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(request_on(fd, "GET /api/a HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(request_on(fd, "GET /api/b HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u)
      << "kept alive between requests that come at once";
  char c;
  errno = 0;
  ssize_t n = read(fd, &c, 1);
  EXPECT_EQ(n, 0) << "expected the proxy's close, got " << n << " (" << std::strerror(errno) << ")";
  close(fd);
  EXPECT_TRUE(eventually([&] { return proxy_->stats().active_connections == 0; }));
  EXPECT_EQ(proxy_->stats().timeouts, 0u) << "an idle client is not a slow one";
}

// The server closed the kept-alive upstream connection after answering: the next request is
// sent on it, fails, and is retried once on a fresh connection, which answers.
TEST_F(ProxyTest, RequestOnAnUpstreamTheServerClosedIsRetriedOnceOnAFreshOne) {
  using Act = ScriptedServer::Act;
  ScriptedServer server({Act::kAnswerOnceThenClose, Act::kServe});
  start(server.port());
  int fd = connect_to_proxy();
  EXPECT_EQ(request_on(fd, "GET /api/a HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  ASSERT_TRUE(eventually([&] { return server.closed() == 1; }));
  std::string out = request_on(fd, "GET /api/b HTTP/1.1\r\nHost: b\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  close(fd);
  EXPECT_EQ(server.connections(), 2u) << "one fresh connection for the retry";
  EXPECT_TRUE(eventually([&] { return server.answered() == 2; })) << server.answered();
  EXPECT_EQ(proxy_->stats().upstream_errors, 0u);
}

// When the fresh connection fails as well, the client gets 502: one retry, never a second.
TEST_F(ProxyTest, RetryFailingToo502AfterExactlyOneRetry) {
  using Act = ScriptedServer::Act;
  ScriptedServer server({Act::kAnswerOnceThenClose, Act::kCloseWithoutAnswer, Act::kServe});
  start(server.port());
  int fd = connect_to_proxy();
  EXPECT_EQ(request_on(fd, "GET /api/a HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  ASSERT_TRUE(eventually([&] { return server.closed() == 1; }));
  std::string out = request_on(fd, "GET /api/b HTTP/1.1\r\nHost: b\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 502", 0), 0u) << out;
  EXPECT_EQ(server.connections(), 2u) << "the first reused, one retry; the third would have answered";
  EXPECT_EQ(proxy_->stats().upstream_errors, 1u);
  // The client's connection is still usable, and the next request opens a fresh upstream.
  EXPECT_EQ(request_on(fd, "GET /api/c HTTP/1.1\r\nHost: b\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  close(fd);
}

// A fresh upstream connection that fails is not retried: 502 at once.
TEST_F(ProxyTest, FreshUpstreamFailingGets502WithoutRetry) {
  using Act = ScriptedServer::Act;
  ScriptedServer server({Act::kCloseWithoutAnswer, Act::kServe});
  start(server.port());
  std::string out = exchange("GET /api/a HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 502", 0), 0u) << out;
  EXPECT_EQ(server.connections(), 1u) << "no retry on a connection that was never reused";
  EXPECT_EQ(server.answered(), 0u);
}

// Issue 17: a connection per request reuses the proxy's upstream connection, but only for the
// same client (address, so the same socket mark, and identity) to the same server under the
// same policy; every request is still judged.
TEST_F(ProxyTest, UpstreamConnectionsArePooledPerClientAndServerOnly) {
  EchoServer server;
  start(server.port());
  const std::string get = "GET /api/x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 5; i++) EXPECT_EQ(exchange(get).rfind("HTTP/1.1 200", 0), 0u) << i;
  EXPECT_EQ(server.accepted.load(), 1) << "five client connections, one upstream connection";
  EXPECT_EQ(proxy_->stats().upstream_reused, 4u);
  // Still judged on a pooled connection: denied requests never reach the server.
  std::string denied = exchange("GET /admin HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(denied.rfind("HTTP/1.1 403", 0), 0u) << denied;
  EXPECT_EQ(reported_denials_.load(), 1);

  // Another identity at the same address: not its connection.
  client_identity_ = 2000;
  EXPECT_EQ(exchange(get).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(server.accepted.load(), 2);
  // Another client address (another socket mark) with the first identity: not its either.
  client_identity_ = 1000;
  client_ip_ = 0x7f000002;
  EXPECT_EQ(exchange(get).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(server.accepted.load(), 3);
  // Each of them finds its own again.
  client_ip_ = 0;
  EXPECT_EQ(exchange(get).rfind("HTTP/1.1 200", 0), 0u);
  client_identity_ = 2000;
  EXPECT_EQ(exchange(get).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(server.accepted.load(), 3);

  // A new policy (the same rule again): connections opened under the old one are not reused.
  client_identity_ = 1000;
  start_policy_only();
  EXPECT_EQ(exchange(get).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(server.accepted.load(), 4);
  EXPECT_EQ(proxy_->stats().upstream_connects, 4u);
}

// A pooled connection the server closed meanwhile is not used: the request gets a fresh one.
TEST_F(ProxyTest, APooledConnectionTheServerClosedIsReplaced) {
  uint16_t port;
  int listener = listen_on_loopback(port);
  std::atomic<int> accepted{0};
  // Answers one request per connection, keep-alive in words, then closes it.
  std::thread server([&] {
    for (;;) {
      int c = accept(listener, nullptr, nullptr);
      if (c < 0) return;
      accepted++;
      char buf[4096];
      std::string in;
      ssize_t n;
      while (in.find("\r\n\r\n") == std::string::npos && (n = read(c, buf, sizeof buf)) > 0) in.append(buf, n);
      std::string out = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      (void)!write(c, out.data(), out.size());
      close(c);
    }
  });
  start(port);
  const std::string get = "GET /api/x HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 3; i++) {
    std::string out = exchange(get);
    EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << i << ": " << out;
  }
  EXPECT_EQ(accepted.load(), 3);
  EXPECT_EQ(proxy_->stats().upstream_errors, 0u);
  shutdown(listener, SHUT_RDWR);
  close(listener);
  server.join();
}

}  // namespace
}  // namespace pilus::proxy
