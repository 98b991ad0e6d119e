// Unit tests of the API transport: routing, errors, query parsing, streaming, concurrency, shutdown.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <utility>  // Boost 1.74 Asio needs std::exchange declared first with GCC 12

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "api/http_server.h"
#include "common/error.h"

namespace pilus::api {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using nlohmann::json;

// Short paths: sun_path holds at most 107 bytes.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/pilus-api-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sock_path_ = dir_.file("run/pilus.sock");
    server_ = HttpServer::unix_socket(sock_path_);
  }
  void TearDown() override { server_.reset(); }

  HttpClient client() const { return HttpClient(sock_path_); }

  TempDir dir_;
  std::string sock_path_;
  std::unique_ptr<HttpServer> server_;
};

// Raw HTTP exchanges on one Unix connection, for what HttpClient does not do (keep-alive, garbage).
struct RawConnection {
  asio::io_context ioc;
  asio::local::stream_protocol::socket sock{ioc};
  beast::flat_buffer buf;

  explicit RawConnection(const std::string& path) { sock.connect(asio::local::stream_protocol::endpoint(path)); }
  http::response<http::string_body> get(const std::string& target) {
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "localhost");
    http::write(sock, req);
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    return res;
  }
};

TEST_F(ApiTest, RoundTripGetAndPostJson) {
  server_->handle("GET", "/v1/ping", [](const Request&) { return Response::json({{"ok", true}}); });
  server_->handle("POST", "/v1/echo", [](const Request& r) {
    auto j = json::parse(r.body);
    j["seen"] = r.method;
    return Response::json(j, 201);
  });
  server_->start();

  auto c = client();
  auto r = c.request("GET", "/v1/ping");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(json::parse(r.body), json({{"ok", true}}));

  r = c.request("POST", "/v1/echo", json{{"name", "nginx"}, {"n", 3}}.dump());
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(json::parse(r.body), json({{"name", "nginx"}, {"n", 3}, {"seen", "POST"}}));
}

TEST_F(ApiTest, SocketFileIs0600AndParentCreated0755) {
  struct stat st{};
  ASSERT_EQ(::stat(sock_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir_.file("run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);

  server_.reset();
  EXPECT_FALSE(fs::exists(sock_path_)) << "the server removes its socket when destroyed";
}

TEST_F(ApiTest, StaleSocketIsReplacedButLiveOneIsNot) {
  // A live server already owns sock_path_.
  try {
    HttpServer::unix_socket(sock_path_);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already serving"), std::string::npos) << e.what();
  }

  // A socket file nobody listens on, as left by a crashed agent.
  std::string stale = dir_.file("stale.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, stale.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  auto s = HttpServer::unix_socket(stale);
  s->handle("GET", "/x", [](const Request&) { return Response::json(1); });
  s->start(1);
  EXPECT_EQ(HttpClient(stale).request("GET", "/x").body, "1");
}

TEST_F(ApiTest, RefusesToReplaceARegularFile) {
  std::string path = dir_.file("not-a-socket");
  { std::ofstream(path) << "keep me"; }
  EXPECT_THROW(HttpServer::unix_socket(path), Error);
  EXPECT_TRUE(fs::exists(path));
}

TEST_F(ApiTest, NotFoundAndMethodNotAllowed) {
  server_->handle("GET", "/v1/pods", [](const Request&) { return Response::json(json::array()); });
  server_->handle_prefix("DELETE", "/v1/pods/", [](const Request&) { return Response::json(nullptr); });
  server_->start();
  auto c = client();

  auto r = c.request("GET", "/x");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body), json({{"error", "no such API path: /x"}}));

  r = c.request("POST", "/v1/pods", "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(json::parse(r.body).contains("error"));

  r = c.request("GET", "/v1/pods/default/nginx");
  EXPECT_EQ(r.status, 405) << "a prefix route exists for the path, with another method";
}

TEST_F(ApiTest, PrefixRoutesLongestWinsAfterExact) {
  auto answer = [](std::string who) { return [who](const Request&) { return Response::json(who); }; };
  server_->handle_prefix("GET", "/v1/", answer("v1"));
  server_->handle_prefix("GET", "/v1/pods/", answer("pods"));
  server_->handle("GET", "/v1/pods/special", answer("exact"));
  server_->start();
  auto c = client();
  EXPECT_EQ(c.request("GET", "/v1/status").body, "\"v1\"");
  EXPECT_EQ(c.request("GET", "/v1/pods/default/nginx?x=1").body, "\"pods\"");
  EXPECT_EQ(c.request("GET", "/v1/pods/special").body, "\"exact\"");
}

TEST_F(ApiTest, HandlerExceptionsBecomeErrorResponses) {
  server_->handle("GET", "/bad", [](const Request&) -> Response { fail("pod {} not found", "nginx"); });
  server_->handle("GET", "/bug", [](const Request&) -> Response { throw std::logic_error("oops"); });
  server_->handle("POST", "/json", [](const Request& r) { return Response::json(json::parse(r.body)); });
  server_->start();
  auto c = client();

  auto r = c.request("GET", "/bad");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body), json({{"error", "pod nginx not found"}}));

  r = c.request("GET", "/bug");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(json::parse(r.body)["error"], "oops");

  r = c.request("POST", "/json", "{not json");
  EXPECT_EQ(r.status, 400);

  EXPECT_EQ(c.request("GET", "/bad").status, 400) << "the server survives";
}

TEST_F(ApiTest, QueryParsingWithRepeatedKeysAndPercentEncoding) {
  Request seen;
  server_->handle("GET", "/v1/flows", [&](const Request& r) {
    seen = r;
    return Response::json(r.query);
  });
  server_->start();

  auto r = client().request("GET", "/v1/flows?pod=a&pod=b&label=app%3Dweb%20v2&x=%2Fy+z&follow&&empty=&pod=c");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(seen.path, "/v1/flows");
  EXPECT_EQ(seen.query.at("pod"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(seen.query_value("pod"), "a");
  EXPECT_EQ(seen.query_value("label"), "app=web v2");
  EXPECT_EQ(seen.query_value("x"), "/y z");
  EXPECT_TRUE(seen.has_query("follow"));
  EXPECT_EQ(seen.query_value("follow", "unset"), "");
  EXPECT_EQ(seen.query_value("empty", "unset"), "");
  EXPECT_EQ(seen.query_value("missing", "fallback"), "fallback");
  EXPECT_EQ(seen.query.size(), 5u);

  EXPECT_EQ(percent_decode("100%"), "100%") << "malformed escapes are kept";
  EXPECT_EQ(percent_decode("%zz%4"), "%zz%4");
  std::string odd = "a b/c?d=e&f%+\xc3\xa9";
  EXPECT_EQ(percent_decode(percent_encode(odd)), odd);
  EXPECT_EQ(percent_encode("app=web v2"), "app%3Dweb%20v2");
}

TEST_F(ApiTest, KeepAliveAndMalformedRequest) {
  int calls = 0;
  server_->handle("GET", "/n", [&](const Request&) { return Response::json(++calls); });
  server_->start(1);

  RawConnection conn(sock_path_);
  EXPECT_EQ(conn.get("/n").body(), "1");
  EXPECT_EQ(conn.get("/n").body(), "2") << "same connection";

  RawConnection bad(sock_path_);
  asio::write(bad.sock, asio::buffer(std::string("THIS IS NOT HTTP\r\n\r\n")));
  http::response<http::string_body> res;
  http::read(bad.sock, bad.buf, res);
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_TRUE(json::parse(res.body()).contains("error"));
  char c;
  beast::error_code ec;
  bad.sock.read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << "the connection is closed after a malformed request";

  EXPECT_EQ(client().request("GET", "/n").body, "3");
}

TEST_F(ApiTest, LargeBodiesUpTo64MiB) {
  server_->handle("POST", "/size", [](const Request& r) { return Response::json(r.body.size()); });
  server_->start();
  auto c = client();
  std::string big(20 << 20, 'x');
  auto r = c.request("POST", "/size", big);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::to_string(big.size()));

  try {
    r = c.request("POST", "/size", std::string((64 << 20) + 1, 'x'));
    EXPECT_EQ(r.status, 413);
  } catch (const Error&) {
    // The agent may close before the client has written all of it; refusing is what matters.
  }
  EXPECT_EQ(c.request("POST", "/size", "abc").body, "3");

  // What curl does for bodies over 1 KiB: it waits for "100 Continue" before sending the body.
  RawConnection conn(sock_path_);
  asio::write(conn.sock, asio::buffer(std::string(
                             "POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")));
  http::response<http::empty_body> interim;
  http::read(conn.sock, conn.buf, interim);
  EXPECT_EQ(interim.result_int(), 100);
  asio::write(conn.sock, asio::buffer(std::string("xyz")));
  http::response<http::string_body> res;
  http::read(conn.sock, conn.buf, res);
  EXPECT_EQ(res.body(), "3");
}

TEST_F(ApiTest, StreamLinesArriveInOrder) {
  server_->handle_stream("GET", "/v1/flows", [](const Request& r, const StreamWriter& w) {
    int n = std::stoi(r.query_value("n"));
    for (int i = 0; i < n; ++i) {
      // Lines split across chunks and several lines per chunk must both come out whole.
      std::string line = json{{"i", i}}.dump() + "\n";
      if (i % 3 == 0) {
        w(line.substr(0, 3));
        w(line.substr(3));
      } else if (!w(line)) {
        return;
      }
    }
    w("{\"last\":1}\n{\"tail\":true}");
  });
  server_->start();

  std::vector<std::string> lines;
  client().stream_lines("GET", "/v1/flows?n=50", [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  });
  ASSERT_EQ(lines.size(), 52u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(json::parse(lines[i])["i"], i);
  EXPECT_EQ(lines[50], "{\"last\":1}");
  EXPECT_EQ(lines[51], "{\"tail\":true}") << "a last line without newline is delivered too";
}

TEST_F(ApiTest, StreamHandlerErrorBeforeWritingIsThrownByClient) {
  server_->handle_stream("GET", "/s", [](const Request&, const StreamWriter&) { fail("no such pod: {}", "x"); });
  server_->handle("GET", "/plain", [](const Request&) { return Response::error(409, "busy"); });
  server_->start();
  auto c = client();
  try {
    c.stream_lines("GET", "/s", [](std::string_view) { return true; });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "no such pod: x");
  }
  EXPECT_THROW(c.stream_lines("GET", "/nowhere", [](std::string_view) { return true; }), Error);
  try {
    c.stream_lines("GET", "/plain", [](std::string_view) { return true; });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "busy");
  }
}

TEST_F(ApiTest, ClientStoppingEarlyIsSeenByHandler) {
  std::promise<int> handler_done;
  server_->handle_stream("GET", "/follow", [&](const Request&, const StreamWriter& w) {
    int i = 0;
    while (w(std::to_string(i) + "\n")) {
      ++i;
      std::this_thread::sleep_for(5ms);
    }
    handler_done.set_value(i);
  });
  server_->start();

  std::vector<std::string> lines;
  client().stream_lines("GET", "/follow", [&](std::string_view l) {
    lines.emplace_back(l);
    return lines.size() < 3;
  });
  EXPECT_EQ(lines, (std::vector<std::string>{"0", "1", "2"}));
  auto done = handler_done.get_future();
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready) << "writer must return false after the client left";
  EXPECT_GE(done.get(), 3);
}

TEST_F(ApiTest, HeartbeatNoticesClientGoneWithoutWriting) {
  std::promise<void> noticed;
  server_->handle_stream("GET", "/idle", [&](const Request&, const StreamWriter& w) {
    w("hello\n");
    while (w("")) std::this_thread::sleep_for(5ms);
    noticed.set_value();
  });
  server_->start();
  client().stream_lines("GET", "/idle", [](std::string_view) { return false; });
  EXPECT_EQ(noticed.get_future().wait_for(5s), std::future_status::ready);
}

TEST_F(ApiTest, SlowStreamsDoNotBlockOtherRequests) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> streaming{0};
  server_->handle_stream("GET", "/slow", [&](const Request&, const StreamWriter& w) {
    w("first\n");
    ++streaming;
    std::unique_lock lock(mu);
    while (!release) {
      cv.wait_for(lock, 20ms);
      if (!w("")) return;
    }
    lock.unlock();
    w("second\n");
  });
  std::atomic<int> served{0};
  server_->handle("GET", "/fast", [&](const Request&) { return Response::json(++served); });
  server_->start(1);  // more streams than pool threads

  constexpr int kStreams = 3;
  std::vector<std::thread> streams;
  std::vector<std::vector<std::string>> got(kStreams);
  for (int s = 0; s < kStreams; ++s) {
    streams.emplace_back([&, s] {
      client().stream_lines("GET", "/slow", [&](std::string_view l) {
        got[s].emplace_back(l);
        return true;
      });
    });
  }
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (streaming < kStreams && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(streaming, kStreams);

  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        if (client().request("GET", "/fast").status == 200) ++ok;
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok, 40);

  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& t : streams) t.join();
  for (auto& g : got) EXPECT_EQ(g, (std::vector<std::string>{"first", "second"}));
}

TEST_F(ApiTest, StopDoesNotHangOnStreams) {
  std::atomic<bool> probing_started{false}, waiting_started{false}, stuck_started{false};
  server_->handle_stream("GET", "/probing", [&](const Request&, const StreamWriter& w) {
    w("x\n");
    probing_started = true;
    while (w("")) std::this_thread::sleep_for(10ms);
  });
  // Woken by on_stop() rather than by polling.
  auto wake = std::make_shared<std::pair<std::mutex, std::condition_variable>>();
  auto woken = std::make_shared<bool>(false);
  server_->on_stop([wake, woken] {
    std::lock_guard lock(wake->first);
    *woken = true;
    wake->second.notify_all();
  });
  server_->handle_stream("GET", "/waiting", [&, wake, woken](const Request&, const StreamWriter& w) {
    w("x\n");
    waiting_started = true;
    std::unique_lock lock(wake->first);
    wake->second.wait(lock, [&] { return *woken; });
    EXPECT_FALSE(w("late\n"));
  });
  // Ignores shutdown for a while: stop() gives up after the grace period.
  auto stuck_release = std::make_shared<std::atomic<bool>>(false);
  server_->handle_stream("GET", "/stuck", [&, stuck_release](const Request&, const StreamWriter& w) {
    w("x\n");
    stuck_started = true;
    while (!*stuck_release) std::this_thread::sleep_for(10ms);
  });
  server_->set_stop_grace(300ms);
  server_->start(2);

  std::vector<std::thread> clients;
  std::atomic<int> ended{0};
  for (const char* p : {"/probing", "/waiting", "/stuck"}) {
    clients.emplace_back([&, p] {
      try {
        client().stream_lines("GET", p, [](std::string_view) { return true; });
      } catch (const Error&) {
        // Cut off by the shutdown, as expected.
      }
      ++ended;
    });
  }
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!(probing_started && waiting_started && stuck_started) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(probing_started && waiting_started && stuck_started);

  auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 2s);
  server_->stop();  // idempotent
  for (auto& t : clients) t.join();
  EXPECT_EQ(ended, 3) << "stop() closes every connection, even that of the stuck handler";
  *stuck_release = true;
  std::this_thread::sleep_for(50ms);  // let the detached handler finish before the test's locals go
}

TEST_F(ApiTest, StopWithoutStartAndWithIdleConnections) {
  auto idle = HttpServer::unix_socket(dir_.file("idle.sock"));
  idle->stop();

  server_->handle("GET", "/n", [](const Request&) { return Response::json(1); });
  server_->start();
  RawConnection conn(sock_path_);
  EXPECT_EQ(conn.get("/n").body(), "1");
  auto t0 = std::chrono::steady_clock::now();
  server_->stop();  // the kept-alive connection must not hold it
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST_F(ApiTest, TcpServerOnEphemeralPort) {
  auto metrics = HttpServer::tcp("127.0.0.1:0");
  metrics->handle("GET", "/metrics", [](const Request&) {
    Response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = "pilus_up 1\n";
    return r;
  });
  metrics->start(1);
  ASSERT_NE(metrics->port(), 0);

  asio::io_context ioc;
  asio::ip::tcp::socket sock(ioc);
  sock.connect({asio::ip::make_address("127.0.0.1"), metrics->port()});
  http::request<http::string_body> req{http::verb::get, "/metrics", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(sock, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(sock, buf, res);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/plain; version=0.0.4");
  EXPECT_EQ(res.body(), "pilus_up 1\n");

  EXPECT_THROW(HttpServer::tcp("127.0.0.1"), Error);
  EXPECT_THROW(HttpServer::tcp("127.0.0.1:99999"), Error);
  EXPECT_THROW(HttpServer::tcp("127.0.0.1:" + std::to_string(metrics->port())), Error) << "port in use";
}

TEST_F(ApiTest, ClientErrorWhenNoAgent) {
  std::string missing = dir_.file("nobody/here.sock");
  try {
    HttpClient(missing).request("GET", "/v1/status");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("cannot reach the pilus agent at " + missing + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("(is `pilus agent` running?)"), std::string::npos) << msg;
  }

  server_.reset();  // the socket path is gone now
  EXPECT_THROW(client().stream_lines("GET", "/v1/flows", [](std::string_view) { return true; }), Error);

  // A socket file with no listener: connection refused.
  std::string stale = dir_.file("stale.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, stale.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  try {
    HttpClient(stale).request("GET", "/v1/status");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach the pilus agent at " + stale), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pilus::api
