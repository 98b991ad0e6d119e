#include "proxy/http_proxy.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <cerrno>
#include <unordered_map>

#include "common/error.h"
#include "proxy/http_request_view.h"
#include "proxy/http_target.h"
#include "proxy/upstream_mark.h"

namespace pilus::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using SteadyClock = std::chrono::steady_clock;

// Idle upstream connections, kept when a client connection ends so that the next connection
// of the same client to the same server skips the connect (a connection per request would
// otherwise pay two TCP handshakes). The upstream socket carries the client in its mark and
// the server's datapath judged it as that client, so a connection is only ever handed to a
// session whose key is the same in every part: the client's address (hence the mark), its
// identity, the server's address and port, and the policy generation it was opened under
// (any policy change empties the pool's use: older entries are dropped when met). Every
// request on it is still judged by the proxy, and its packets by the datapath. An entry is
// taken only when idle: its last response read whole, nothing unread, no bytes and no EOF
// waiting on the socket (checked before reuse), not older than upstream_idle_timeout.
class UpstreamPool {
 public:
  struct Key {
    uint32_t client_ip = 0, mark = 0, client_identity = 0, server_ip = 0;
    uint16_t server_port = 0;
    uint64_t policy_generation = 0;
    bool operator==(const Key&) const = default;
  };

  UpstreamPool(size_t per_key, size_t total, std::chrono::milliseconds idle_timeout)
      : per_key_(per_key), total_(total), idle_timeout_(idle_timeout) {}

  // An idle connection for this key that still looks alive, or nullopt.
  std::optional<beast::tcp_stream> take(const Key& key) {
    std::vector<std::unique_ptr<beast::tcp_stream>> stale;  // closed outside the lock
    std::optional<beast::tcp_stream> found;
    {
      std::lock_guard l(mu_);
      auto it = idle_.find(key);
      if (it == idle_.end()) return std::nullopt;
      auto now = SteadyClock::now();
      auto& list = it->second;
      while (!list.empty() && !found) {
        Idle e = std::move(list.back());
        list.pop_back();
        count_--;
        if (now - e.since <= idle_timeout_ && quiet(*e.stream)) found.emplace(std::move(*e.stream));
        else stale.push_back(std::move(e.stream));
      }
      if (list.empty()) idle_.erase(it);
    }
    return found;
  }

  // Keeps an idle connection; closes it instead when the key or the pool is full.
  void put(const Key& key, beast::tcp_stream stream) {
    auto owned = std::make_unique<beast::tcp_stream>(std::move(stream));
    std::vector<std::unique_ptr<beast::tcp_stream>> dropped;
    {
      std::lock_guard l(mu_);
      auto now = SteadyClock::now();
      if (now - last_sweep_ > idle_timeout_) sweep(now, dropped);
      auto& list = idle_[key];
      if (list.size() >= per_key_ || count_ >= total_) {
        dropped.push_back(std::move(owned));
        if (list.empty()) idle_.erase(key);
        return;
      }
      list.push_back(Idle{std::move(owned), now});
      count_++;
    }
  }

  void clear() {
    std::lock_guard l(mu_);
    idle_.clear();
    count_ = 0;
  }

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const {
      uint64_t h = (uint64_t(k.client_ip) << 32 | k.server_ip) ^ (uint64_t(k.client_identity) << 16 | k.server_port);
      return std::hash<uint64_t>()(h ^ k.policy_generation * 0x9e3779b97f4a7c15ull ^ k.mark);
    }
  };
  struct Idle {
    std::unique_ptr<beast::tcp_stream> stream;  // a pointer: streams cannot be move-assigned
    SteadyClock::time_point since;
  };

  // Nothing to read and no EOF: a server that closed, or sent bytes nobody asked for, makes
  // the connection unusable for a next request.
  static bool quiet(beast::tcp_stream& s) {
    char b;
    ssize_t n = ::recv(s.socket().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void sweep(SteadyClock::time_point now, std::vector<std::unique_ptr<beast::tcp_stream>>& dropped) {
    last_sweep_ = now;
    for (auto it = idle_.begin(); it != idle_.end();) {
      auto& list = it->second;
      std::erase_if(list, [&](Idle& e) {
        if (now - e.since <= idle_timeout_) return false;
        dropped.push_back(std::move(e.stream));
        count_--;
        return true;
      });
      it = list.empty() ? idle_.erase(it) : std::next(it);
    }
  }

  const size_t per_key_, total_;
  const std::chrono::milliseconds idle_timeout_;
  std::mutex mu_;
  std::unordered_map<Key, std::vector<Idle>, KeyHash> idle_;
  size_t count_ = 0;
  SteadyClock::time_point last_sweep_{};
};

struct HttpProxy::Impl {
  ProxyConfig config;
  Hooks hooks;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;

  mutable std::mutex policy_mu;
  std::shared_ptr<const L7Policy> policy = std::make_shared<L7Policy>();
  uint64_t policy_generation = 0;  // +1 on every set_policy: pooled upstreams of older ones are not reused

  std::unique_ptr<UpstreamPool> pool;  // declared after io: its sockets close before io goes

  std::atomic<uint64_t> connections{0}, active{0}, unknown_origin{0}, requests{0}, forwarded{0}, denied{0},
      parse_errors{0}, timeouts{0}, upstream_errors{0}, rejected{0}, aborted{0}, identity_rejected{0},
      descriptors_exhausted{0}, invalid_targets{0}, invalid_framing{0}, upstream_connects{0}, upstream_reused{0};

  // Open connections per client identity, for max_connections_per_identity.
  std::mutex per_identity_mu;
  std::unordered_map<uint32_t, size_t> per_identity;
  bool take_identity_slot(uint32_t identity) {
    std::lock_guard<std::mutex> l(per_identity_mu);
    size_t& n = per_identity[identity];
    if (n >= config.max_connections_per_identity) return false;
    n++;
    return true;
  }
  void release_identity_slot(uint32_t identity) {
    std::lock_guard<std::mutex> l(per_identity_mu);
    if (auto it = per_identity.find(identity); it != per_identity.end() && --it->second == 0) per_identity.erase(it);
  }

  std::shared_ptr<const L7Policy> current_policy(uint64_t* generation = nullptr) const {
    std::lock_guard<std::mutex> l(policy_mu);
    if (generation) *generation = policy_generation;
    return policy;
  }

  awaitable<void> accept_loop();
  awaitable<void> session(tcp::socket socket);
};

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response simple_response(unsigned version, http::status status, std::string body, bool keep_alive) {
  Response res{status, version < 10 ? 11u : version};
  res.set(http::field::content_type, "text/plain");
  res.body() = std::move(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// The URL of a request as judged: its Host (checked by prepare_request) and its normalized target.
std::string url_of(const Request& req, const ConnectionOrigin& o) {
  std::string host(req[http::field::host]);
  if (host.empty()) host = endpoint::to_string(o.server_ip) + ":" + std::to_string(o.server_port);
  return "http://" + host + std::string(req.target());
}

struct Refusal {
  http::status status;
  std::string text;
  bool framing;  // else the target or Host
};

// What the proxy will not forward because the server could read it otherwise than
// the proxy judged it; else rewrites the request to the form it is judged and sent in:
// the normalized target, and an absolute-form target's host as Host (RFC 9112 3.2.2).
std::optional<Refusal> prepare_request(Request& req) {
  // RFC 9112 6.1/6.3: only "chunked" is forwarded as a body coding; with Content-Length too the
  // framing is ambiguous (request smuggling).
  size_t codings = req.count(http::field::transfer_encoding);
  if (codings) {
    if (req.count(http::field::content_length))
      return Refusal{http::status::bad_request, "Transfer-Encoding and Content-Length together\n", true};
    std::string_view te(req[http::field::transfer_encoding].data(), req[http::field::transfer_encoding].size());
    while (!te.empty() && (te.front() == ' ' || te.front() == '\t')) te.remove_prefix(1);
    while (!te.empty() && (te.back() == ' ' || te.back() == '\t')) te.remove_suffix(1);
    if (codings > 1 || !beast::iequals(beast::string_view(te.data(), te.size()), "chunked"))
      return Refusal{http::status::not_implemented, "Unsupported Transfer-Encoding\n", true};
  }
  size_t hosts = req.count(http::field::host);
  if (hosts > 1) return Refusal{http::status::bad_request, "More than one Host header\n", false};
  if (hosts == 1 && !valid_host(std::string_view(req[http::field::host].data(), req[http::field::host].size())))
    return Refusal{http::status::bad_request, "Invalid Host header\n", false};
  std::string why;
  auto target = normalize_target(std::string_view(req.target().data(), req.target().size()), &why);
  if (!target) return Refusal{http::status::bad_request, "Bad request target: " + why + "\n", false};
  req.target(target->target);
  if (!target->authority.empty()) req.set(http::field::host, target->authority);
  return std::nullopt;
}

std::string protocol_of(unsigned version) { return version == 10 ? "HTTP/1.0" : "HTTP/1.1"; }

bool has_body(const Request& req) {
  return req.chunked() || (req.has_content_length() && req[http::field::content_length] != "0");
}

// Beast closes the socket when a deadline passes; with coroutines the pending read may
// report the cancellation instead of beast's timeout code.
bool is_timeout(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == boost::asio::error::operation_aborted;
}

bool expects_continue(const Request& req) {
  return beast::iequals(req[http::field::expect], "100-continue");
}

// A response whose end is the end of the connection cannot be followed by another on it.
bool self_delimited(const Response& res, bool head_request) {
  unsigned s = res.result_int();
  return head_request || s == 204 || s == 304 || (s >= 100 && s < 200) || res.chunked() || res.has_content_length();
}

}  // namespace

awaitable<void> HttpProxy::Impl::accept_loop() {
  // Out of descriptors, accept() fails at once for as long as the backlog holds connections:
  // wait (doubling up to a second) instead of spinning, and say so once in a while, not per try.
  constexpr auto kFirstBackoff = std::chrono::milliseconds(10), kMaxBackoff = std::chrono::milliseconds(1000);
  constexpr auto kLogEvery = std::chrono::seconds(10);
  auto backoff = kFirstBackoff;
  SteadyClock::time_point last_log{};
  uint64_t unlogged = 0;
  asio::steady_timer pause(acceptor.get_executor());
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Every failure backs off (ENOBUFS/ENOMEM would spin as well); descriptors are counted.
      if (ec.value() == EMFILE || ec.value() == ENFILE) descriptors_exhausted++;
      unlogged++;
      if (auto now = SteadyClock::now(); now - last_log >= kLogEvery) {
        spdlog::warn("proxy: accept: {} ({} failures since the last report); retrying in {} ms", ec.message(),
                     unlogged, backoff.count());
        last_log = now;
        unlogged = 0;
      }
      pause.expires_after(backoff);
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      backoff = std::min(backoff * 2, kMaxBackoff);
      continue;
    }
    backoff = kFirstBackoff;
    if (active.load() >= config.max_connections) {
      rejected++;
      socket.close(ec);
      continue;
    }
    asio::co_spawn(socket.get_executor(), session(std::move(socket)), asio::detached);
  }
}

awaitable<void> HttpProxy::Impl::session(tcp::socket socket) {
  struct ActiveGuard {
    std::atomic<uint64_t>& n;
    explicit ActiveGuard(std::atomic<uint64_t>& c) : n(c) { n++; }
    ~ActiveGuard() { n--; }
  } guard(active);
  beast::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  tcp::endpoint local = socket.local_endpoint(ec);
  if (ec) co_return;
  std::optional<ConnectionOrigin> origin = hooks.origin(endpoint::Ipv4{peer.address().to_v4().to_uint()}, peer.port(),
                                                        local.port());
  if (!origin) {
    // Not sent here by the datapath: nobody to forward to.
    unknown_origin++;
    co_return;
  }
  // One pod's share of the proxy: past it, its new connections are closed at once.
  if (!take_identity_slot(origin->client_identity)) {
    identity_rejected++;
    co_return;
  }
  struct IdentitySlot {
    Impl& impl;
    uint32_t identity;
    ~IdentitySlot() { impl.release_identity_slot(identity); }
  } slot{*this, origin->client_identity};
  connections++;
  // Requests and responses go out in one write each: no reason to wait for more.
  socket.set_option(tcp::no_delay(true), ec);

  beast::tcp_stream client(std::move(socket));
  beast::flat_buffer client_buf;
  std::optional<beast::tcp_stream> upstream;
  beast::flat_buffer upstream_buf;
  std::shared_ptr<const L7Policy> policy;
  uint64_t policy_generation = 0;
  ConnectionRules rules;
  bool first = true;
  // The pool key of this client's upstream to this server (generation: the policy's when the
  // upstream was opened or taken), and whether it is idle: its last response read whole.
  UpstreamPool::Key pool_key;
  pool_key.client_ip = origin->client_ip.value;
  pool_key.client_identity = origin->client_identity;
  pool_key.server_ip = origin->server_ip.value;
  pool_key.server_port = origin->server_port;
  auto mark = upstream_mark(config.listen_ip, origin->client_ip);
  pool_key.mark = mark.value_or(0);
  bool upstream_idle = false;

  auto send = [&](Response res) -> awaitable<bool> {
    beast::error_code wec;
    client.expires_after(config.body_timeout);
    co_await http::async_write(client, res, asio::redirect_error(use_awaitable, wec));
    co_return !wec;
  };
  auto close_client = [&]() -> awaitable<void> {
    // Lingering close: stop sending, then drain what the client is still sending (bounded in
    // time and bytes), so our last response is not lost to a reset from unread data.
    beast::error_code lec;
    client.socket().shutdown(tcp::socket::shutdown_send, lec);
    std::vector<char> sink(16384);
    size_t drained = 0;
    client.expires_after(std::chrono::milliseconds(500));
    while (!lec && drained < 1024 * 1024) {
      size_t n = co_await client.async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, lec));
      drained += n;
    }
    client.close();
  };

  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(config.header_limit));
    parser.body_limit(config.body_limit);
    // One deadline for the whole header: a client trickling bytes gets no more time.
    client.expires_after(first ? config.header_timeout : config.idle_timeout);
    co_await http::async_read_header(client, client_buf, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset) break;
      if (is_timeout(ec)) {
        // Beast closes the socket when a deadline passes: a slow client (or an idle
        // kept-alive one) is simply disconnected, as nginx does, and counted.
        if (first || parser.got_some() || client_buf.size() > 0) timeouts++;
        co_return;
      }
      if (ec == http::error::partial_message) {
        aborted++;  // the client went away in the middle of its request
        break;
      }
      parse_errors++;
      spdlog::debug("proxy: unusable request from {}:{}: {}", peer.address().to_string(), peer.port(), ec.message());
      if (ec == http::error::header_limit)
        co_await send(simple_response(11, http::status::request_header_fields_too_large, "Request header too large\n", false));
      else if (ec == http::error::body_limit)  // a Content-Length over the limit: known from the header
        co_await send(simple_response(11, http::status::payload_too_large, "Request body too large\n", false));
      else
        co_await send(simple_response(11, http::status::bad_request, "Bad request\n", false));
      break;
    }
    // Later requests of a kept-alive connection get the idle deadline; from here on its headers arrived.
    first = false;
    requests++;
    Request& req = parser.get();
    auto started = SteadyClock::now();

    if (auto refusal = prepare_request(req)) {
      (refusal->framing ? invalid_framing : invalid_targets)++;
      spdlog::debug("proxy: refused a request from {}:{}: {}", peer.address().to_string(), peer.port(), refusal->text);
      co_await send(simple_response(req.version(), refusal->status, refusal->text, false));
      break;
    }
    // Each request is judged by the policy in force when it arrives.
    if (auto now = current_policy(&policy_generation); now != policy) {
      policy = now;
      rules = policy->for_connection(*origin);
    }
    HttpRequestView view = request_view(req);
    RequestVerdict verdict = rules.check(view);

    HttpExchange x;
    x.origin = *origin;
    x.method = std::string(req.method_string());
    x.url = url_of(req, *origin);
    x.protocol = protocol_of(req.version());
    x.allowed = verdict.allowed;
    x.policy = verdict.policy;
    x.request_time = std::chrono::system_clock::now();
    hooks.report(x, false);

    if (!verdict.allowed) {
      denied++;
      bool keep = req.keep_alive();
      if (verdict.connection_denied) {
        keep = false;  // nothing on this connection may pass any more: 403, then close
        upstream.reset();
      } else if (has_body(req) && expects_continue(req)) {
        keep = false;  // the client may or may not send the body now: start afresh
      } else if (!parser.is_done()) {
        client.expires_after(config.body_timeout);
        co_await http::async_read(client, client_buf, parser, asio::redirect_error(use_awaitable, ec));
        if (ec) keep = false;
      }
      x.status = 403;
      x.responded = co_await send(simple_response(req.version(), http::status::forbidden, "Access denied", keep));
      x.response_time = std::chrono::system_clock::now();
      x.latency = SteadyClock::now() - started;
      hooks.report(x, true);
      if (!keep || !x.responded) break;
      continue;
    }

    forwarded++;
    if (expects_continue(req)) {
      // Answer the client's Expect ourselves; the server gets the whole request at once.
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      client.expires_after(config.body_timeout);
      co_await asio::async_write(client, asio::buffer(kContinue, sizeof(kContinue) - 1),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      req.erase(http::field::expect);
    }
    if (!parser.is_done()) {
      client.expires_after(config.body_timeout);
      co_await http::async_read(client, client_buf, parser, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (is_timeout(ec)) timeouts++;
        else if (ec != http::error::end_of_stream && ec != asio::error::eof) parse_errors++;
        if (ec == http::error::body_limit)
          co_await send(simple_response(11, http::status::payload_too_large, "Request body too large\n", false));
        break;
      }
    }
    bool client_keep_alive = req.keep_alive();
    bool head = req.method() == http::verb::head;

    // Forward, on the kept-alive upstream connection when there is one; a server that
    // closed it meanwhile gets one fresh connection.
    Response res;
    bool got_response = false;
    unsigned failure = 503;
    for (int attempt = 0; attempt < 2 && !got_response; attempt++) {
      // An idle pooled connection of this very client to this server, opened under the policy
      // in force now (see UpstreamPool); only on the first attempt, so a retry connects afresh.
      if (!upstream && attempt == 0 && mark) {
        pool_key.policy_generation = policy_generation;
        if (auto pooled = pool->take(pool_key)) {
          upstream.emplace(std::move(*pooled));
          upstream_buf.clear();
          upstream_reused++;
        }
      }
      bool reused = upstream.has_value();
      upstream_idle = false;
      if (!upstream) {
        upstream.emplace(co_await asio::this_coro::executor);
        upstream_buf.clear();
        pool_key.policy_generation = policy_generation;
        beast::error_code bec;
        upstream->socket().open(tcp::v4(), bec);
        // From the node's address, marked with the client's: the server's datapath judges the
        // connection as the client. Without the mark it would pass as the node: never connect so.
        if (!bec) {
          if (!mark) bec = asio::error::address_family_not_supported;
          else if (setsockopt(upstream->socket().native_handle(), SOL_SOCKET, SO_MARK, &*mark, sizeof(*mark)) < 0)
            bec = beast::error_code(errno, boost::system::system_category());
          if (bec) spdlog::warn("proxy: cannot mark the upstream connection for {}: {}", endpoint::to_string(origin->client_ip), bec.message());
        }
        if (!bec) upstream->socket().bind(tcp::endpoint(asio::ip::address_v4(config.listen_ip.value), 0), bec);
        upstream->expires_after(config.connect_timeout);
        if (!bec)
          co_await upstream->async_connect(
              tcp::endpoint(asio::ip::address_v4(origin->server_ip.value), origin->server_port),
              asio::redirect_error(use_awaitable, bec));
        if (!bec) upstream->socket().set_option(tcp::no_delay(true), bec);
        if (!bec) upstream_connects++;
        if (bec) {
          upstream.reset();
          failure = 503;
          break;
        }
      }
      upstream->expires_after(config.upstream_timeout);
      co_await http::async_write(*upstream, req, asio::redirect_error(use_awaitable, ec));
      if (!ec) {
        http::response_parser<http::string_body> rp;
        rp.body_limit(config.body_limit);
        rp.header_limit(static_cast<uint32_t>(config.header_limit));
        if (head) rp.skip(true);
        co_await http::async_read(*upstream, upstream_buf, rp, asio::redirect_error(use_awaitable, ec));
        if (!ec) {
          res = rp.release();
          got_response = true;
          break;
        }
      }
      upstream.reset();
      failure = 502;
      // Only a reused connection may have been closed by the server in between: retry once.
      if (!reused) break;
    }
    if (!got_response) {
      upstream_errors++;
      x.status = failure;
      x.latency = SteadyClock::now() - started;
      x.responded = co_await send(simple_response(
          req.version(), static_cast<http::status>(failure),
          failure == 503 ? "upstream connect error\n" : "upstream error\n", client_keep_alive));
      x.response_time = std::chrono::system_clock::now();
      hooks.report(x, true);
      if (!client_keep_alive || !x.responded) break;
      continue;
    }
    x.latency = SteadyClock::now() - started;
    if (!res.keep_alive()) upstream.reset();
    else upstream_idle = upstream_buf.size() == 0;  // bytes past the response: not reusable
    bool keep = client_keep_alive && self_delimited(res, head);
    res.version(req.version() == 10 ? 10 : 11);
    res.keep_alive(keep);
    x.status = res.result_int();
    x.responded = co_await send(std::move(res));
    x.response_time = std::chrono::system_clock::now();
    hooks.report(x, true);
    if (!keep || !x.responded) break;
  }
  // Only an upstream whose last response was read whole outlives this client connection.
  if (upstream && upstream_idle && upstream_buf.size() == 0) pool->put(pool_key, std::move(*upstream));
  upstream.reset();
  co_await close_client();
}

HttpProxy::HttpProxy(ProxyConfig config, Hooks hooks) : config_(std::move(config)), impl_(std::make_unique<Impl>()) {
  impl_->config = config_;
  impl_->hooks = std::move(hooks);
  impl_->pool = std::make_unique<UpstreamPool>(config_.upstream_idle_per_key, config_.upstream_idle_total,
                                               config_.upstream_idle_timeout);
  beast::error_code ec;
  tcp::endpoint at(asio::ip::address_v4(config_.listen_ip.value), config_.port);
  impl_->acceptor.open(at.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(at, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("the L7 proxy cannot listen on {}:{}: {}", endpoint::to_string(config_.listen_ip), config_.port, ec.message());
  port_ = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  for (unsigned i = 0; i < std::max(1u, config_.threads); i++)
    impl_->threads.emplace_back([this] {
      for (;;) {
        try {
          impl_->io.run();
          return;
        } catch (const std::exception& e) {
          // A session's bug must not take the proxy down for everyone else.
          spdlog::error("proxy: {}", e.what());
        }
      }
    });
}

HttpProxy::~HttpProxy() {
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
}

void HttpProxy::set_policy(std::shared_ptr<const L7Policy> policy) {
  {
    std::lock_guard<std::mutex> l(impl_->policy_mu);
    impl_->policy = std::move(policy);
    impl_->policy_generation++;
  }
  impl_->pool->clear();  // opened under the old policy: not reused (take() checks the generation too)
}

std::shared_ptr<const L7Policy> HttpProxy::policy() const { return impl_->current_policy(); }

ProxyStats HttpProxy::stats() const {
  const Impl& i = *impl_;
  return {i.connections.load(), i.active.load(),   i.unknown_origin.load(), i.requests.load(),
          i.forwarded.load(),   i.denied.load(),   i.parse_errors.load(),   i.timeouts.load(),
          i.upstream_errors.load(), i.rejected.load(), i.aborted.load(), i.identity_rejected.load(),
          i.descriptors_exhausted.load(), i.invalid_targets.load(), i.invalid_framing.load(),
          i.upstream_connects.load(), i.upstream_reused.load()};
}

}  // namespace pilus::proxy
