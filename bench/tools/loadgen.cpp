// pilus-loadgen: the benchmark's traffic tool (netperf-like TCP_RR / TCP_CRR / TCP_STREAM, HTTP
// requests, a UDP flood, and an RR "watch" that reports when a connection stops being answered).
// Every mode is bounded by --seconds; results are one JSON object on stdout.
//
//   serve  --port P                    echo on P, discard on P+1, HTTP/1.1 on P+2 (one epoll loop)
//   http   --host H --port P+2 --seconds S [--path /x] [--keep-alive 0|1]
//                                      GET after GET, on one connection or one connection each
//   rr     --host H --port P --seconds S    1-byte request/response on one connection
//   crr    --host H --port P --seconds S    connect, 1 request, close (RST: no TIME_WAIT pile-up)
//   stream --host H --port P+1 --seconds S  bulk send, bytes per second
//   watch  --host H --port P --seconds S --stall-ms M   rr until no reply within M ms
//   udpflood --host H --port P --count N [--rate PPS] --seconds S
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string mode, host = "127.0.0.1";
  int port = 5001;
  double seconds = 5;
  long count = 0;
  long rate = 0;
  int stall_ms = 200;
  std::string path = "/";
  bool keep_alive = true;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "pilus-loadgen: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

Options parse(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pilus-loadgen serve|rr|crr|stream|http|watch|udpflood [--host H] [--port P] "
                         "[--seconds S] [--count N] [--rate PPS] [--stall-ms M] [--path /x] [--keep-alive 0|1]\n");
    std::exit(2);
  }
  Options o;
  o.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::stoi(v);
    else if (k == "--seconds") o.seconds = std::stod(v);
    else if (k == "--count") o.count = std::stol(v);
    else if (k == "--rate") o.rate = std::stol(v);
    else if (k == "--stall-ms") o.stall_ms = std::stoi(v);
    else if (k == "--path") o.path = v;
    else if (k == "--keep-alive") o.keep_alive = v != "0";
    else {
      std::fprintf(stderr, "pilus-loadgen: unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return o;
}

sockaddr_in address(const Options& o, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, o.host.c_str(), &a.sin_addr) != 1) {
    std::fprintf(stderr, "pilus-loadgen: bad IPv4 address %s\n", o.host.c_str());
    std::exit(2);
  }
  return a;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

long realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

// Connects with a deadline; -1 when the peer did not answer in time (e.g. a dropped SYN).
int connect_within(const sockaddr_in& a, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof err;
  if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

// One 1-byte request and its 1-byte answer; false on timeout or error.
bool transact(int fd, int timeout_ms) {
  char b = 'x';
  if (send(fd, &b, 1, MSG_NOSIGNAL) != 1) return false;
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return false;
  return recv(fd, &b, 1, 0) == 1;
}

void close_with_reset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

// What a served connection does with what it reads.
enum class Service { echo, discard, http };

struct ServedConnection {
  Service service;
  std::string pending;  // HTTP: bytes read that do not yet make a whole request
};

std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The Content-Length a header block names, 0 when none.
size_t content_length(const std::string& lower_headers) {
  auto at = lower_headers.find("\r\ncontent-length:");
  return at == std::string::npos ? 0 : std::strtoul(lower_headers.c_str() + at + 17, nullptr, 10);
}

// Answers every whole request in c.pending with a small 200; false once the client asked to
// close (the answer is sent first).
bool answer_http(int fd, ServedConnection& c) {
  for (;;) {
    size_t end = c.pending.find("\r\n\r\n");
    if (end == std::string::npos) return true;
    std::string headers = lowercase(c.pending.substr(0, end));
    size_t whole = end + 4 + content_length(headers);
    if (c.pending.size() < whole) return true;  // the body is still coming
    c.pending.erase(0, whole);
    bool close_after = headers.find("\r\nconnection: close") != std::string::npos;
    std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n";
    response += close_after ? "Connection: close\r\n\r\nok\n" : "\r\nok\n";
    (void)send(fd, response.data(), response.size(), MSG_NOSIGNAL);
    if (close_after) return false;
  }
}

int serve(const Options& o) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  std::map<int, Service> listeners;
  for (Service service : {Service::echo, Service::discard, Service::http}) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o.port + static_cast<int>(service)));
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || listen(fd, 4096) < 0) die("listen");
    listeners[fd] = service;
    epoll_event ev{EPOLLIN, {.fd = fd}};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  std::map<int, ServedConnection> connections;
  std::vector<char> buf(1 << 16);
  auto t0 = Clock::now();
  epoll_event events[64];
  auto drop = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    connections.erase(fd);
    close(fd);
  };
  while (o.seconds <= 0 || since(t0) < o.seconds) {
    int n = epoll_wait(ep, events, 64, 1000);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (auto l = listeners.find(fd); l != listeners.end()) {
        for (;;) {
          int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) break;
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          connections[c] = ServedConnection{l->second, {}};
          epoll_event ev{EPOLLIN, {.fd = c}};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      ssize_t r = recv(fd, buf.data(), buf.size(), 0);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(fd);
        continue;
      }
      if (r < 0) continue;
      ServedConnection& c = connections[fd];
      if (c.service == Service::echo) {
        (void)send(fd, buf.data(), static_cast<size_t>(r), MSG_NOSIGNAL);
      } else if (c.service == Service::http) {
        c.pending.append(buf.data(), static_cast<size_t>(r));
        if (!answer_http(fd, c)) drop(fd);
      }
    }
  }
  return 0;
}

int rr(const Options& o) {
  sockaddr_in a = address(o, o.port);
  int fd = connect_within(a, 2000);
  if (fd < 0) die("connect");
  long n = 0, failed = 0;
  auto t0 = Clock::now();
  while (since(t0) < o.seconds) {
    if (!transact(fd, 1000)) {
      failed++;
      break;
    }
    n++;
  }
  double s = since(t0);
  close(fd);
  std::printf("{\"transactions\":%ld,\"seconds\":%.3f,\"per_second\":%.1f,\"failed\":%ld}\n", n, s, n / s, failed);
  return failed ? 1 : 0;
}

int crr(const Options& o) {
  sockaddr_in a = address(o, o.port);
  long n = 0, failed = 0;
  auto t0 = Clock::now();
  while (since(t0) < o.seconds) {
    int fd = connect_within(a, 1000);
    if (fd < 0 || !transact(fd, 1000)) {
      if (fd >= 0) close_with_reset(fd);
      if (++failed > 10) break;
      continue;
    }
    close_with_reset(fd);
    n++;
  }
  double s = since(t0);
  std::printf("{\"transactions\":%ld,\"seconds\":%.3f,\"per_second\":%.1f,\"failed\":%ld}\n", n, s, n / s, failed);
  return failed > 10 ? 1 : 0;
}

int stream(const Options& o) {
  sockaddr_in a = address(o, o.port);
  int fd = connect_within(a, 2000);
  if (fd < 0) die("connect");
  // A peer that vanishes mid-run must not block send() past the run's end.
  timeval one_second{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &one_second, sizeof one_second);
  std::vector<char> buf(1 << 16, 'x');
  long bytes = 0;
  auto t0 = Clock::now();
  while (since(t0) < o.seconds) {
    ssize_t w = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
    if (w <= 0) break;
    bytes += w;
  }
  double s = since(t0);
  close(fd);
  std::printf("{\"bytes\":%ld,\"seconds\":%.3f,\"gbit_per_second\":%.3f}\n", bytes, s, bytes * 8 / s / 1e9);
  return 0;
}

// Reads one whole HTTP response (headers and Content-Length body) from fd into buf, which
// keeps any bytes past it; the status code, or -1 on timeout, error or a malformed answer.
int read_http_response(int fd, std::string& buf, int timeout_ms) {
  char chunk[4096];
  size_t end;
  auto fill = [&]() {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return false;
    ssize_t r = recv(fd, chunk, sizeof chunk, 0);
    if (r <= 0) return false;
    buf.append(chunk, static_cast<size_t>(r));
    return true;
  };
  while ((end = buf.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) return -1;
  if (buf.compare(0, 9, "HTTP/1.1 ") != 0) return -1;
  int status = std::atoi(buf.c_str() + 9);
  size_t whole = end + 4 + content_length(lowercase(buf.substr(0, end)));
  while (buf.size() < whole)
    if (!fill()) return -1;
  buf.erase(0, whole);
  return status;
}

double percentile(std::vector<double> sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())))];
}

// GET --path after GET: on one kept-alive connection, or (--keep-alive 0) each on a connection
// of its own (Connection: close, then a reset so TIME_WAIT does not pile up). Latency is from
// sending the request (or connecting) to the last byte of the answer.
int http(const Options& o) {
  sockaddr_in a = address(o, o.port);
  std::string request = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\nUser-Agent: pilus-loadgen\r\n";
  request += o.keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
  std::vector<double> latencies_us;
  long non_2xx = 0, failed = 0;
  std::string buf;
  int fd = -1;
  auto t0 = Clock::now();
  while (since(t0) < o.seconds && failed <= 10) {
    auto start = Clock::now();
    if (fd < 0 && (fd = connect_within(a, 1000)) < 0) {
      failed++;
      continue;
    }
    int status = -1;
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()))
      status = read_http_response(fd, buf, 1000);
    if (status < 0) failed++;
    else {
      latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
      if (status < 200 || status > 299) non_2xx++;
    }
    if (status < 0 || !o.keep_alive) {
      close_with_reset(fd);
      fd = -1;
      buf.clear();
    }
  }
  double s = since(t0);
  if (fd >= 0) close(fd);
  std::sort(latencies_us.begin(), latencies_us.end());
  std::printf("{\"requests\":%zu,\"seconds\":%.3f,\"per_second\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
              "\"non_2xx\":%ld,\"failed\":%ld}\n",
              latencies_us.size(), s, static_cast<double>(latencies_us.size()) / s, percentile(latencies_us, 0.5),
              percentile(latencies_us, 0.99), non_2xx, failed);
  return failed > 10 ? 1 : 0;
}

// Transactions on one connection until one is not answered within --stall-ms: prints the wall
// clock time of the last answered one, which the caller compares with when its change landed.
int watch(const Options& o) {
  sockaddr_in a = address(o, o.port);
  int fd = connect_within(a, 2000);
  if (fd < 0) die("connect");
  long n = 0, last_ok = realtime_ns();
  bool stalled = false;
  auto t0 = Clock::now();
  while (since(t0) < o.seconds) {
    if (!transact(fd, o.stall_ms)) {
      stalled = true;
      break;
    }
    last_ok = realtime_ns();
    n++;
  }
  close_with_reset(fd);
  std::printf("{\"transactions\":%ld,\"stalled\":%s,\"last_ok_ns\":%ld}\n", n, stalled ? "true" : "false", last_ok);
  return 0;
}

int udpflood(const Options& o) {
  sockaddr_in a = address(o, o.port);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  char payload[16] = "pilus-bench";
  long sent = 0;
  auto t0 = Clock::now();
  while (sent < o.count && since(t0) < o.seconds) {
    if (o.rate > 0) {
      // Paced in batches of 64 to keep the clock reads cheap.
      double due = static_cast<double>(sent) / static_cast<double>(o.rate);
      double now = since(t0);
      if (due > now) std::this_thread::sleep_for(std::chrono::duration<double>(due - now));
    }
    for (int k = 0; k < 64 && sent < o.count; k++)
      if (sendto(fd, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&a), sizeof a) == sizeof payload) sent++;
  }
  double s = since(t0);
  close(fd);
  std::printf("{\"sent\":%ld,\"seconds\":%.3f,\"per_second\":%.1f}\n", sent, s, sent / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  if (o.mode == "serve") return serve(o);
  if (o.mode == "rr") return rr(o);
  if (o.mode == "crr") return crr(o);
  if (o.mode == "stream") return stream(o);
  if (o.mode == "http") return http(o);
  if (o.mode == "watch") return watch(o);
  if (o.mode == "udpflood") return udpflood(o);
  std::fprintf(stderr, "pilus-loadgen: unknown mode %s\n", o.mode.c_str());
  return 2;
}
