// The API server's limits (connection cap with eviction, header and idle timeouts, body size)
// and the typed reading of JSON request bodies.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/http_client.h"
#include "api/http_server.h"
#include "api/json_body.h"
#include "common/error.h"
#include "unit/error_of.h"

namespace pilus::api {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

class LimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pilus-limits-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/api.sock";
    server_ = HttpServer::unix_socket(path_);
    server_->handle("GET", "/ping", [](const Request&) { return Response::json({{"ok", true}}); });
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A raw connection that has sent `text`; -1 when connect failed.
  int open_raw(const std::string& text) const {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    if (!text.empty()) {
      EXPECT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL), ssize_t(text.size()));
    }
    return fd;
  }

  // Waits (up to 30 s) until the server has closed fd or answered on it; true if it did.
  static bool closed_by_server(int fd) {
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[512];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n >= 0;  // 0: closed; > 0: an answer (413, 503...)
  }

  template <typename Pred>
  static bool eventually(Pred p) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (p()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return p();
  }

  std::string dir_, path_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(LimitsTest, AtTheCapTheLongestWaitingConnectionMakesRoom) {
  server_->set_limits({.max_connections = 3});
  server_->start();
  std::vector<int> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(open_raw("GET /ping HTTP/1.1\r\nHost: x\r\n"));  // never finished
    ASSERT_TRUE(eventually([&] { return server_->connections() == size_t(i + 1); }));
  }
  // A real request still gets in, and the first slow client pays for it.
  auto r = HttpClient(path_).request("GET", "/ping");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(closed_by_server(slow[0]));
  EXPECT_EQ(server_->refusals()["evicted"], 1u);
  EXPECT_EQ(server_->refusals()["connection_limit"], 0u);
  for (int fd : slow) ::close(fd);
}

TEST_F(LimitsTest, AtTheCapWithNobodyWaitingANewConnectionGets503) {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<int> busy{0};
  server_->handle("GET", "/busy", [&](const Request&) {
    busy++;
    released.wait();
    return Response::json(1);
  });
  server_->set_limits({.max_connections = 2});
  server_->start(4);
  auto a = std::async(std::launch::async, [&] { return HttpClient(path_).request("GET", "/busy"); });
  auto b = std::async(std::launch::async, [&] { return HttpClient(path_).request("GET", "/busy"); });
  ASSERT_TRUE(eventually([&] { return busy == 2; }));
  auto r = HttpClient(path_).request("GET", "/ping");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("too many open connections"), std::string::npos) << r.body;
  EXPECT_EQ(server_->refusals()["connection_limit"], 1u);
  release.set_value();
  EXPECT_EQ(a.get().status, 200);
  EXPECT_EQ(b.get().status, 200);
  EXPECT_EQ(HttpClient(path_).request("GET", "/ping").status, 200);
}

TEST_F(LimitsTest, HalfSentHeaderIsClosedAfterTheHeaderTimeout) {
  server_->set_limits({.header_timeout = 200ms});
  server_->start();
  int idle = open_raw("");
  int half = open_raw("GET /ping HTTP/1.1\r\nHo");
  EXPECT_TRUE(closed_by_server(idle));
  EXPECT_TRUE(closed_by_server(half));
  EXPECT_EQ(server_->refusals()["header_timeout"], 2u);
  ::close(idle);
  ::close(half);
}

TEST_F(LimitsTest, BodyThatStopsComingIsClosedAfterTheIdleTimeout) {
  server_->handle("POST", "/echo", [](const Request& r) { return Response::json(r.body.size()); });
  server_->set_limits({.header_timeout = 30s, .idle_timeout = 200ms});
  server_->start();
  int fd = open_raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
  EXPECT_TRUE(closed_by_server(fd));
  EXPECT_EQ(server_->refusals()["idle_timeout"], 1u);
  ::close(fd);
}

TEST_F(LimitsTest, BodyOverTheLimitIs413ReadByTheClient) {
  server_->handle("POST", "/echo", [](const Request& r) { return Response::json(r.body.size()); });
  server_->set_limits({.max_body = 1000});
  server_->start();
  // Larger than the socket buffers: the client is still writing when the server answers and closes.
  auto r = HttpClient(path_).request("POST", "/echo", std::string(8 << 20, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("the limit is 1000 bytes"), std::string::npos) << r.body;
  EXPECT_EQ(server_->refusals()["request_too_large"], 1u);
  EXPECT_EQ(HttpClient(path_).request("POST", "/echo", std::string(1000, 'x')).body, "1000");
}

TEST_F(LimitsTest, ASlowHandlerDoesNotHoldUpOthers) {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<bool> started{false};
  server_->handle("GET", "/slow", [&](const Request&) {
    started = true;
    released.wait();
    return Response::json(1);
  });
  server_->start(2);
  auto slow = std::async(std::launch::async, [&] { return HttpClient(path_).request("GET", "/slow"); });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  int half = open_raw("GET /ping HTTP/1.1\r\n");  // and a half-sent one
  for (int i = 0; i < 20; ++i) EXPECT_EQ(HttpClient(path_).request("GET", "/ping").status, 200);
  release.set_value();
  EXPECT_EQ(slow.get().status, 200);
  ::close(half);
}

TEST_F(LimitsTest, EveryReasonIsReportedEvenAtZero) {
  auto r = server_->refusals();
  for (const char* reason : kRefusalReasons) EXPECT_EQ(r.count(reason), 1u) << reason;
  EXPECT_EQ(r.size(), std::size(kRefusalReasons));
}

TEST_F(LimitsTest, LimitsAreFixedBeforeStart) {
  server_->start();
  EXPECT_THROW(server_->set_limits({}), Error);
}

// ---- JSON bodies ----

TEST(JsonBody, FieldsAreReadWithTheirPath) {
  json j;
  JsonField root = parse_json_body(R"({"sources": [{"name": "a.yaml", "text": "kind: Pod"}], "dry": true, "n": 3})", j);
  auto items = root.at("sources").items();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].path(), "sources[0]");
  EXPECT_EQ(items[0].at("name").string(), "a.yaml");
  EXPECT_EQ(items[0].at("text").take_string(), "kind: Pod");
  EXPECT_TRUE(root.at("dry").boolean());
  EXPECT_EQ(root.at("n").integer(), 3);
  EXPECT_TRUE(root.has("n"));
  EXPECT_FALSE(root.has("m"));
}

TEST(JsonBody, WrongTypesAndMissingFieldsNameTheField) {
  json j;
  JsonField root = parse_json_body(R"({"sources": [{"name": 5}], "dry": "yes", "n": 1.5})", j);
  EXPECT_EQ(pilus::testing::error_of([&] { root.at("sources").items()[0].at("name").string(); }),
            "request body: sources[0].name: must be a string, not an integer");
  EXPECT_EQ(pilus::testing::error_of([&] { root.at("sources").items()[0].at("text"); }), "request body: sources[0].text: missing");
  EXPECT_EQ(pilus::testing::error_of([&] { root.at("dry").boolean(); }), "request body: dry: must be a boolean, not a string");
  EXPECT_EQ(pilus::testing::error_of([&] { root.at("n").integer(); }), "request body: n: must be an integer, not a number");
  EXPECT_EQ(pilus::testing::error_of([&] { root.at("sources").at("x"); }), "request body: sources: must be an object, not an array");
  json k;
  JsonField list = parse_json_body("[1]", k);
  EXPECT_EQ(pilus::testing::error_of([&] { list.at("sources"); }), "request body: the body: must be an object, not an array");
}

TEST(JsonBody, InvalidJsonIsAnError) {
  json j;
  EXPECT_NE(pilus::testing::error_of([&] { parse_json_body("{\"a\": ", j); }).find("invalid JSON"), std::string::npos);
}

}  // namespace
}  // namespace pilus::api
