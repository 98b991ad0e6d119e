// HTTP/1.1 API server: Asio pool for accepting, reading requests and plain handlers; a thread per stream.
#include "api/http_server.h"

#include "api/v1/errors.h"
#include "common/percent_encoding.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>

#include <utility>  // Boost 1.74 Asio needs std::exchange declared first with GCC 12

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/log_rate_limit.h"

namespace pilus::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

using Protocol = asio::generic::stream_protocol;
using Socket = Protocol::socket;
using Acceptor = asio::basic_socket_acceptor<Protocol>;

constexpr std::uint32_t kMaxHeader = 64u << 10;  // long query strings (?pod=a&pod=b&...)
constexpr int kStreamSendTimeoutSec = 30;        // a client that stops reading must not pin a thread forever

enum class Refusal { connection_limit, evicted, header_timeout, idle_timeout, request_too_large, descriptor_limit };
constexpr size_t kRefusalCount = std::size(kRefusalReasons);

struct Route {
  Handler handler;
  StreamHandler stream;
  std::string stream_content_type;
};
using MethodRoutes = std::map<std::string, Route>;

// Outlives the server when a stream handler has to be detached at stop().
struct StreamControl {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stopping{false};
  int active = 0;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, int> fds;  // so stop() can interrupt blocked writes
};


std::map<std::string, std::vector<std::string>> parse_query(std::string_view q) {
  std::map<std::string, std::vector<std::string>> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    std::string key = percent_decode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1));
    out[key].push_back(std::move(value));
  }
  return out;
}

Response call_handler(const Handler& h, Request& req) {
  try {
    return h(req);
  } catch (const Error& e) {
    return Response::error(400, e.what());
  } catch (const nlohmann::json::parse_error& e) {
    // A body that is not JSON is the client's mistake, not the agent's.
    return Response::error(400, std::string("invalid JSON: ") + e.what());
  } catch (const std::exception& e) {
    spdlog::error("API {} {}: {}", req.method, req.path, e.what());
    return Response::error(500, e.what());
  } catch (...) {
    spdlog::error("API {} {}: unknown exception", req.method, req.path);
    return Response::error(500, "internal error");
  }
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;  // EPIPE/ECONNRESET: client gone; EAGAIN: send timeout; or stop() shut it down
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool peer_still_open(int fd) {
  char c;
  ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  return true;
}

std::string reason_of(int status) {
  auto r = http::obsolete_reason(static_cast<http::status>(status));
  return std::string(r.data(), r.size());
}

std::string plain_response_bytes(const Response& r) {
  return fmt::format("HTTP/1.1 {} {}\r\nServer: pilus\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                     r.status, reason_of(r.status), r.content_type, r.body.size(), r.body);
}

class Session;

}  // namespace

struct HttpServer::State {
  asio::io_context ioc;
  Acceptor acceptor{asio::make_strand(ioc)};  // the strand lets stop() close it safely
  std::vector<std::thread> threads;            // I/O
  std::optional<asio::thread_pool> handler_pool;
  std::atomic<bool> stopping{false};
  bool started = false;
  bool stopped = false;
  std::mutex lifecycle_mu;
  std::chrono::milliseconds stop_grace{3000};
  std::vector<std::function<void()>> stop_callbacks;
  ServerLimits limits;

  std::shared_mutex routes_mu;
  std::map<std::string, MethodRoutes> exact;
  std::map<std::string, MethodRoutes> prefixes;

  std::mutex sessions_mu;
  std::uint64_t next_session = 0;
  std::map<std::uint64_t, std::weak_ptr<Session>> sessions;

  std::shared_ptr<StreamControl> streams = std::make_shared<StreamControl>();

  std::array<std::atomic<std::uint64_t>, kRefusalCount> refused{};
  LogRateLimit accept_log;
  std::chrono::milliseconds accept_backoff{0};

  std::string unix_path;  // removed at destruction if it is still our socket
  ino_t unix_inode = 0;
  uint16_t port = 0;

  std::string name() const { return unix_path.empty() ? "port " + std::to_string(port) : unix_path; }
  void count(Refusal r) { refused[static_cast<size_t>(r)]++; }

  // Exact path first, then the longest prefix; the method is matched within each.
  std::optional<Route> find_route(const std::string& method, const std::string& path, bool& path_known) {
    std::shared_lock lock(routes_mu);
    path_known = false;
    if (auto it = exact.find(path); it != exact.end()) {
      path_known = true;
      if (auto m = it->second.find(method); m != it->second.end()) return m->second;
    }
    for (auto it = prefixes.rbegin(); it != prefixes.rend(); ++it) {
      // Reverse order visits longer keys before their own prefixes.
      if (path.compare(0, it->first.size(), it->first) != 0) continue;
      path_known = true;
      if (auto m = it->second.find(method); m != it->second.end()) return m->second;
    }
    return std::nullopt;
  }

  void start_accept();
  void accepted(Socket sock);
  void accept_failed(const beast::error_code& ec);
  // Closes the connection that has waited longest for its request; false when none is waiting.
  bool evict_oldest_waiting();
};

namespace {

std::int64_t now_ns() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// One connection. Everything it does runs on its own strand (the socket's executor): reads,
// writes, its timer, and closes asked for by other threads (eviction, stop()).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::State& st, Socket sock, std::uint64_t id)
      : st_(st), sock_(std::move(sock)), timer_(sock_.get_executor()), id_(id) {}
  ~Session() {
    std::lock_guard lock(st_.sessions_mu);
    st_.sessions.erase(id_);
  }

  void start() {
    asio::dispatch(sock_.get_executor(), [self = shared_from_this()] { self->read_next(); });
  }

  void read_next() {
    if (st_.stopping) return;
    parser_.emplace();
    parser_->body_limit(st_.limits.max_body);
    parser_->header_limit(kMaxHeader);
    waiting_since_ = now_ns();
    waiting_ = true;
    arm(st_.limits.header_timeout, Refusal::header_timeout);
    http::async_read_header(sock_, buf_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  // Waiting for a request to begin or to complete (what a slow client holds).
  bool waiting() const { return waiting_ && !closing_; }
  std::int64_t waiting_since() const { return waiting_since_; }

  // From any thread: the close runs on the session's strand, if the session still waits then.
  void evict() {
    closing_ = true;
    asio::post(sock_.get_executor(), [self = shared_from_this()] {
      if (!self->waiting_) {
        self->closing_ = false;  // its request arrived meanwhile: it is served
        return;
      }
      self->st_.count(Refusal::evicted);
      self->close();
    });
  }

  // From stop(): wakes whatever the connection is blocked on.
  void interrupt() {
    asio::post(sock_.get_executor(), [self = shared_from_this()] {
      self->disarm();
      beast::error_code ignored;
      if (self->sock_.is_open()) self->sock_.shutdown(asio::socket_base::shutdown_both, ignored);
    });
  }

 private:
  void arm(std::chrono::milliseconds after, Refusal why) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), gen = ++timer_gen_, why](beast::error_code ec) {
      if (ec || gen != self->timer_gen_ || !self->sock_.is_open()) return;
      self->st_.count(why);
      spdlog::debug("API server on {}: closing a connection: {}", self->st_.name(), kRefusalReasons[size_t(why)]);
      self->close();
    });
  }
  void disarm() {
    ++timer_gen_;
    timer_.cancel();
  }
  void close() {
    disarm();
    beast::error_code ignored;
    sock_.close(ignored);
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read(ec);
    // curl sends this for bodies over 1 KiB and would otherwise wait a second before sending the body.
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      arm(st_.limits.idle_timeout, Refusal::idle_timeout);
      asio::async_write(sock_, asio::buffer(kContinue), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (!ec) self->read_body();
      });
    } else {
      read_body();
    }
  }

  // Piece by piece, so the idle timeout restarts whenever bytes arrive.
  void read_body() {
    if (parser_->is_done()) {
      disarm();
      return on_read({});
    }
    arm(st_.limits.idle_timeout, Refusal::idle_timeout);
    http::async_read_some(sock_, buf_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->on_read(ec);
      self->read_body();
    });
  }

  void on_read(beast::error_code ec) {
    waiting_ = false;
    if (ec) {
      disarm();
      if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        bool too_big = ec == http::error::body_limit || ec == http::error::header_limit;
        if (too_big) st_.count(Refusal::request_too_large);
        write(too_big ? Response::error(413, fmt::format("request too large: {} (the limit is {} bytes of body, {} of header)",
                                                         ec.message(), st_.limits.max_body, kMaxHeader))
                      : Response::error(400, "malformed request: " + ec.message()),
              false, 11);
      }
      return;  // EOF, reset, timed out, or shut down by stop(): the session just ends
    }
    auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    std::string_view target(msg.target().data(), msg.target().size());
    auto q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query = parse_query(target.substr(q + 1));
    req.body = std::move(msg.body());
    bool keep_alive = msg.keep_alive();
    unsigned version = msg.version();
    parser_.reset();  // the body now lives in req only

    bool path_known = false;
    auto route = st_.find_route(req.method, req.path, path_known);
    if (!route) {
      write(path_known ? Response::error(405, "method " + req.method + " not allowed for " + req.path)
                       : Response::error(404, "no such API path: " + req.path),
            keep_alive, version);
    } else if (route->stream) {
      start_stream(std::move(req), route->stream, route->stream_content_type);
    } else {
      // Off the I/O thread: the pool answers, the strand writes. The work guard keeps the I/O
      // threads running until the answer is written, even through stop().
      asio::post(*st_.handler_pool, [self = shared_from_this(), req = std::move(req), handler = route->handler,
                                     keep_alive, version, work = asio::make_work_guard(st_.ioc)]() mutable {
        auto response = std::make_shared<Response>(call_handler(handler, req));
        req = Request{};
        asio::post(self->sock_.get_executor(), [self, response, keep_alive, version] {
          self->write(std::move(*response), keep_alive, version);
        });
      });
    }
  }

  struct Outgoing {
    http::response<http::string_body> res;
    std::optional<http::response_serializer<http::string_body>> serializer;
  };

  void write(Response r, bool keep_alive, unsigned version) {
    if (!sock_.is_open()) return;
    int status = r.status >= 100 && r.status <= 599 ? r.status : 500;
    auto out = std::make_shared<Outgoing>();
    out->res = http::response<http::string_body>(static_cast<http::status>(status), version);
    out->res.set(http::field::server, "pilus");
    out->res.set(http::field::content_type, r.content_type);
    out->res.body() = std::move(r.body);
    out->res.keep_alive(keep_alive && !st_.stopping);
    out->res.prepare_payload();
    out->serializer.emplace(out->res);
    write_some(std::move(out));
  }

  // Piece by piece, so the idle timeout restarts whenever the client takes bytes.
  void write_some(std::shared_ptr<Outgoing> out) {
    arm(st_.limits.idle_timeout, Refusal::idle_timeout);
    http::async_write_some(sock_, *out->serializer, [self = shared_from_this(), out](beast::error_code ec, size_t) {
      if (ec) return self->disarm();
      if (!out->serializer->is_done()) return self->write_some(out);
      self->disarm();
      if (!out->res.keep_alive()) {
        beast::error_code ignored;
        self->sock_.shutdown(asio::socket_base::shutdown_send, ignored);
        return;
      }
      self->read_next();
    });
  }

  // The stream gets the raw fd and its own thread, so it can block without holding a pool thread
  // and can outlive the io_context if stop() has to give up on it.
  void start_stream(Request req, StreamHandler handler, std::string content_type) {
    disarm();
    beast::error_code ec;
    int fd = sock_.release(ec);
    if (ec) {
      spdlog::warn("API stream {}: cannot take over the connection: {}", req.path, ec.message());
      return;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{kStreamSendTimeoutSec, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    auto ctl = st_.streams;
    std::uint64_t id;
    {
      std::lock_guard lock(ctl->mu);
      if (ctl->stopping) {
        ::close(fd);
        return;
      }
      id = ++ctl->next_id;
      ctl->fds[id] = fd;
      ++ctl->active;
    }
    std::thread(run_stream, ctl, id, fd, std::move(req), std::move(handler), std::move(content_type)).detach();
  }
  static void run_stream(std::shared_ptr<StreamControl> ctl, std::uint64_t id, int fd, Request req,
                         StreamHandler handler, std::string content_type) {
    // Shared so that a writer copied out of the handler and called late gets false, not a crash.
    struct WriterState {
      std::mutex mu;
      bool header_sent = false;
      bool alive = true;
    };
    auto ws = std::make_shared<WriterState>();
    StreamWriter writer = [ws, ctl, fd, content_type](std::string_view chunk) -> bool {
      std::lock_guard lock(ws->mu);
      if (!ws->alive) return false;
      if (ctl->stopping) return ws->alive = false;
      if (chunk.empty()) return ws->alive = peer_still_open(fd);
      std::string out;
      if (!ws->header_sent) {
        out = "HTTP/1.1 200 OK\r\nServer: pilus\r\nContent-Type: " + content_type +
              "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        ws->header_sent = true;
      }
      out += fmt::format("{:x}\r\n", chunk.size());
      out.append(chunk);
      out += "\r\n";
      return ws->alive = send_all(fd, out);
    };

    std::optional<Response> failure;
    try {
      handler(req, writer);
    } catch (const Error& e) {
      failure = Response::error(400, e.what());
    } catch (const std::exception& e) {
      spdlog::error("API stream {} {}: {}", req.method, req.path, e.what());
      failure = Response::error(500, e.what());
    } catch (...) {
      failure = Response::error(500, "internal error");
    }
    {
      std::lock_guard lock(ws->mu);
      if (!ws->header_sent) {
        Response empty;
        empty.content_type = content_type;
        send_all(fd, plain_response_bytes(failure ? *failure : empty));
      } else if (!failure && ws->alive && !ctl->stopping) {
        send_all(fd, "0\r\n\r\n");
      }
      // After a failure mid-stream the terminating chunk is left out on purpose: the client must
      // see a truncated stream rather than a complete one.
      ws->alive = false;
    }
    handler = nullptr;  // the handler's captures must go before stop() may return
    writer = nullptr;
    {
      std::lock_guard lock(ctl->mu);
      ctl->fds.erase(id);
      ::shutdown(fd, SHUT_WR);
      ::close(fd);
      --ctl->active;
    }
    ctl->cv.notify_all();
  }

  HttpServer::State& st_;
  Socket sock_;
  asio::steady_timer timer_;
  std::uint64_t timer_gen_ = 0;
  std::uint64_t id_;
  std::atomic<bool> waiting_{false};
  std::atomic<bool> closing_{false};  // an eviction is on its way
  std::atomic<std::int64_t> waiting_since_{0};
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

// A short answer to a connection refused at the cap, written without waiting: the client learns
// why instead of seeing a bare close.
void refuse(Socket& sock) {
  static const std::string kBusy = plain_response_bytes(
      Response::error(503, "the pilus API server has too many open connections; try again later"));
  ::send(sock.native_handle(), kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  beast::error_code ignored;
  sock.close(ignored);
}

bool out_of_descriptors(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory;
}

}  // namespace

bool HttpServer::State::evict_oldest_waiting() {
  std::shared_ptr<Session> oldest;
  std::vector<std::shared_ptr<Session>> seen;  // released after the lock: a last reference runs ~Session, which locks
  {
    std::lock_guard lock(sessions_mu);
    seen.reserve(sessions.size());
    for (auto& [id, weak] : sessions) {
      auto p = weak.lock();
      if (!p) continue;
      if (p->waiting() && (!oldest || p->waiting_since() < oldest->waiting_since())) oldest = p;
      seen.push_back(std::move(p));
    }
  }
  if (!oldest) return false;
  oldest->evict();
  return true;
}

void HttpServer::State::start_accept() {
  // Each connection gets its own strand: its timer, its I/O and closes from other threads never overlap.
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, Socket sock) {
    if (ec == asio::error::operation_aborted || stopping) return;
    if (ec) return accept_failed(ec);
    accept_backoff = std::chrono::milliseconds(0);
    accepted(std::move(sock));
    start_accept();
  });
}

void HttpServer::State::accepted(Socket sock) {
  size_t open = 0;
  {
    std::lock_guard lock(streams->mu);
    open = static_cast<size_t>(streams->active);
  }
  std::shared_ptr<Session> s;
  {
    std::lock_guard lock(sessions_mu);
    if (stopping) return;
    open += sessions.size();
  }
  if (open >= limits.max_connections && !evict_oldest_waiting()) {
    count(Refusal::connection_limit);
    if (auto held = accept_log.allow())
      spdlog::warn("API server on {}: {} connections open, the limit: refusing new ones ({} more not logged)", name(),
                   open, *held);
    return refuse(sock);
  }
  {
    std::lock_guard lock(sessions_mu);
    auto id = ++next_session;
    s = std::make_shared<Session>(*this, std::move(sock), id);
    sessions[id] = s;
  }
  s->start();
}

void HttpServer::State::accept_failed(const beast::error_code& ec) {
  // Out of descriptors: the connection stays in the backlog and accept would fail again at once.
  // Free one by closing the longest-waiting connection, else back off (up to a second); log rarely.
  bool descriptors = out_of_descriptors(ec);
  bool evicted = false;
  if (descriptors) {
    count(Refusal::descriptor_limit);
    evicted = evict_oldest_waiting();
  }
  if (auto held = accept_log.allow())
    spdlog::warn("API server on {}: accept: {}{} ({} more not logged)", name(), ec.message(),
                 descriptors ? "; pausing new connections (raise the descriptor limit, ulimit -n)" : "", *held);
  accept_backoff = evicted ? std::chrono::milliseconds(10)
                           : std::clamp(accept_backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  auto timer = std::make_shared<asio::steady_timer>(acceptor.get_executor(), accept_backoff);
  timer->async_wait([this, timer](beast::error_code) {
    if (!stopping) start_accept();
  });
}

std::string Request::query_value(const std::string& key, const std::string& fallback) const {
  auto it = query.find(key);
  return it == query.end() || it->second.empty() ? fallback : it->second.front();
}

Response Response::json(const nlohmann::json& j, int status) {
  Response r;
  r.status = status;
  // replace: invalid UTF-8 from the kernel or a manifest must not turn a reply into a 500.
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response Response::error(int status, const std::string& message) {
  return json(v1::ErrorBody{message}, status);
}

HttpServer::HttpServer() : state_(std::make_shared<State>()) {}

HttpServer::~HttpServer() {
  stop();
  if (!state_->unix_path.empty()) {
    struct stat st{};
    // Another agent may have replaced the socket since; only remove our own.
    if (::stat(state_->unix_path.c_str(), &st) == 0 && st.st_ino == state_->unix_inode) ::unlink(state_->unix_path.c_str());
  }
}

std::unique_ptr<HttpServer> HttpServer::unix_socket(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) fail("empty API socket path");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    fail("API socket path is too long ({} bytes, at most {}): {}", path.size(), sizeof(sockaddr_un{}.sun_path) - 1, path);

  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (!fs::exists(parent, ec)) {
      fs::create_directories(parent, ec);
      if (ec) fail("cannot create directory {} for the API socket: {}", parent.string(), ec.message());
      fs::permissions(parent, fs::perms(0755), ec);
    }
  }

  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) fail("{} exists and is not a socket; refusing to replace it", path);
    // A socket file that still answers belongs to a running agent: taking it over would orphan it.
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) fail("another process is already serving on {}", path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw system_error("cannot remove stale socket " + path, errno);
  }

  std::unique_ptr<HttpServer> server(new HttpServer());
  auto& s = *server->state_;
  server->address_ = path;
  try {
    Protocol::endpoint ep{asio::local::stream_protocol::endpoint(path)};
    s.acceptor.open(ep.protocol());
    s.acceptor.bind(ep);
    // Between bind and chmod the socket has umask permissions; the 0755 directory keeps the
    // window harmless for the root-owned default location.
    if (::chmod(path.c_str(), 0600) != 0) throw system_error("cannot chmod " + path, errno);
    s.acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    fail("cannot listen on {}: {}", path, e.code().message());
  }
  if (::stat(path.c_str(), &st) == 0) s.unix_inode = st.st_ino;
  s.unix_path = path;
  return server;
}

std::unique_ptr<HttpServer> HttpServer::tcp(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos) fail("bad listen address '{}': expected host:port", host_port);
  std::string host = host_port.substr(0, colon);
  std::string port_str = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto [end, perr] = std::from_chars(port_str.data(), port_str.data() + port_str.size(), port);
  if (perr != std::errc() || end != port_str.data() + port_str.size() || port > 65535)
    fail("bad port in listen address '{}'", host_port);
  if (host.empty()) host = "0.0.0.0";

  std::unique_ptr<HttpServer> server(new HttpServer());
  auto& s = *server->state_;
  server->address_ = host_port;
  try {
    asio::ip::tcp::resolver resolver(s.ioc);
    auto results = resolver.resolve(host, port_str, asio::ip::tcp::resolver::passive);
    if (results.empty()) fail("cannot resolve {}", host);
    Protocol::endpoint ep{results.begin()->endpoint()};
    s.acceptor.open(ep.protocol());
    s.acceptor.set_option(asio::socket_base::reuse_address(true));  // restarts must not wait for TIME_WAIT
    s.acceptor.bind(ep);
    s.acceptor.listen(asio::socket_base::max_listen_connections);
    auto local = s.acceptor.local_endpoint();
    auto* sa = reinterpret_cast<const sockaddr*>(local.data());
    if (sa->sa_family == AF_INET) s.port = ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    if (sa->sa_family == AF_INET6) s.port = ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  } catch (const boost::system::system_error& e) {
    fail("cannot listen on {}: {}", host_port, e.code().message());
  }
  return server;
}

void HttpServer::handle(const std::string& method, const std::string& path, Handler h) {
  std::unique_lock lock(state_->routes_mu);
  state_->exact[path][method] = Route{std::move(h), nullptr, ""};
}

void HttpServer::handle_prefix(const std::string& method, const std::string& prefix, Handler h) {
  std::unique_lock lock(state_->routes_mu);
  state_->prefixes[prefix][method] = Route{std::move(h), nullptr, ""};
}

void HttpServer::handle_stream(const std::string& method, const std::string& path, StreamHandler h,
                               const std::string& content_type) {
  std::unique_lock lock(state_->routes_mu);
  state_->exact[path][method] = Route{nullptr, std::move(h), content_type};
}

void HttpServer::on_stop(std::function<void()> callback) {
  std::lock_guard lock(state_->lifecycle_mu);
  state_->stop_callbacks.push_back(std::move(callback));
}

void HttpServer::set_stop_grace(std::chrono::milliseconds grace) {
  std::lock_guard lock(state_->lifecycle_mu);
  state_->stop_grace = grace;
}

uint16_t HttpServer::port() const { return state_->port; }

void HttpServer::set_limits(const ServerLimits& limits) {
  std::lock_guard lock(state_->lifecycle_mu);
  if (state_->started) fail("API server on {}: limits must be set before start()", address_);
  if (limits.max_connections == 0) fail("API server on {}: the connection limit must be at least 1", address_);
  state_->limits = limits;
}

std::map<std::string, std::uint64_t> HttpServer::refusals() const {
  std::map<std::string, std::uint64_t> out;
  for (size_t i = 0; i < kRefusalCount; ++i) out[kRefusalReasons[i]] = state_->refused[i].load();
  return out;
}

size_t HttpServer::connections() const {
  size_t n = 0;
  {
    std::lock_guard lock(state_->streams->mu);
    n = static_cast<size_t>(state_->streams->active);
  }
  std::lock_guard lock(state_->sessions_mu);
  return n + state_->sessions.size();
}

void HttpServer::start(int threads) {
  auto& s = *state_;
  std::lock_guard lock(s.lifecycle_mu);
  if (s.started || s.stopped) fail("API server on {} was already started", address_);
  s.started = true;
  s.handler_pool.emplace(static_cast<size_t>(std::max(threads, 1)));
  // The pending accept keeps run() busy; once stop() closes the acceptor and the connections, the
  // threads run out of work and return. One I/O thread: it never blocks, handlers run in the pool.
  asio::post(s.acceptor.get_executor(), [st = &s] { st->start_accept(); });
  for (int i = 0; i < 1; ++i) {
    s.threads.emplace_back([st = &s] {
      for (;;) {
        try {
          st->ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("API server thread: {}", e.what());  // keep serving
        }
      }
    });
  }
  spdlog::debug("API server listening on {}", address_);
}

void HttpServer::stop() {
  auto& s = *state_;
  std::unique_lock lifecycle(s.lifecycle_mu);
  if (s.stopped) return;
  s.stopped = true;
  auto callbacks = s.stop_callbacks;
  auto grace = s.stop_grace;
  lifecycle.unlock();  // callbacks or handlers may call on_stop()/port() without deadlocking

  auto ctl = s.streams;
  {
    std::lock_guard lock(ctl->mu);
    ctl->stopping = true;
    for (auto& [id, fd] : ctl->fds) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& cb : callbacks) {
    try {
      cb();
    } catch (const std::exception& e) {
      spdlog::warn("API server stop callback: {}", e.what());
    }
  }

  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(s.sessions_mu);
    s.stopping = true;
    for (auto& [id, weak] : s.sessions)
      if (auto p = weak.lock()) sessions.push_back(std::move(p));
  }
  for (auto& p : sessions) p->interrupt();
  sessions.clear();  // the last reference may be ours; the destructor only needs sessions_mu

  if (s.threads.empty()) {
    beast::error_code ignored;
    s.acceptor.close(ignored);
  } else {
    asio::post(s.acceptor.get_executor(), [st = &s] {
      beast::error_code ignored;
      st->acceptor.close(ignored);
    });
  }

  {
    std::unique_lock lock(ctl->mu);
    if (!ctl->cv.wait_for(lock, grace, [&] { return ctl->active == 0; }))
      spdlog::error("API server on {}: {} stream handler(s) ignored the shutdown for {} ms; leaving them behind",
                    address_, ctl->active, grace.count());
  }
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  if (s.handler_pool) s.handler_pool->join();
}

}  // namespace pilus::api
