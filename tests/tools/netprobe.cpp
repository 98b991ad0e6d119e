// netprobe: the traffic tool e2e tests and the demo run inside pod namespaces.
//   netprobe serve [--tcp PORT] [--udp PORT] [--name NAME]   echo servers (reply "NAME: <msg>")
//   netprobe connect tcp|udp IP PORT [--message M] [--timeout-ms N]
//        one request; prints the reply; exit 0 on a reply, 3 on a timeout (nothing came back:
//        what a datapath drop looks like), 1 on refusal/reset/other errors
//   netprobe stream IP PORT --duration-ms N [--interval-ms N]
//        one long TCP connection of numbered messages, each checked when echoed back;
//        prints {"sent","received","errors","retransmits","max_gap_ms"} as JSON
//   netprobe burst IP PORT --count N
//        N small UDP datagrams from one socket, as fast as the socket takes them; prints {"sent"}
//   netprobe spread tcp|udp IP PORT --count N [--timeout-ms N]
//        N short connections (TCP) or fresh sockets (UDP sendto), each asking who
//        answers; prints {"answers": {NAME: count}, "errors", "first_error",
//        "peer_matches" (getpeername/recvfrom showed IP:PORT), "elapsed_ms"}
//   netprobe rawframe IFACE --ip-bytes N [--count K]
//        K Ethernet frames of EtherType IPv4 carrying only the first N bytes of an IPv4
//        header (a malformed frame a pod with CAP_NET_RAW can send); needs CAP_NET_RAW
//   netprobe hold tcp IP PORT | unix PATH --count N --hold-ms N [--send TEXT] [--ready-file PATH]
//        N connections held open, each having sent TEXT (default: half an HTTP request header),
//        as a slow client would; touches the ready file once all are open (or refused), then
//        holds them hold-ms (0: until stdin has a byte or ends); prints {"opened", "refused", "first_error", "closed_by_peer"} at the end
//   netprobe without-bpf -- COMMAND [ARGS...]
//        runs COMMAND where the bpf() system call fails with ENOSYS (a seccomp filter), as on a
//        kernel built without BPF: for tests of what needs a BPF feature the test kernel has
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/seccomp.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
// `connect` got no answer at all in time (a refusal or a reset exits 1).
constexpr int kExitTimeout = 3;
std::string g_name = "netprobe";

std::string arg_value(int argc, char** argv, const std::string& flag, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; i++)
    if (argv[i] == flag) return argv[i + 1];
  return fallback;
}

sockaddr_in address(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) {
    fprintf(stderr, "bad address %s\n", ip.c_str());
    exit(2);
  }
  return a;
}

void serve_tcp_connection(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    std::string reply = g_name + ": " + std::string(buf, static_cast<size_t>(n));
    if (write(fd, reply.data(), reply.size()) < 0) break;
  }
  close(fd);
}

// Echo servers for the stream mode send raw bytes back unchanged when the
// client asks for it with a first byte of 0.
void serve_tcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = address("0.0.0.0", port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0 || listen(fd, 128) < 0) {
    perror("tcp listen");
    exit(2);
  }
  for (;;) {
    int c = accept(fd, nullptr, nullptr);
    if (c < 0) continue;
    std::thread([c] {
      char first = 1;
      if (recv(c, &first, 1, MSG_PEEK) == 1 && first == 0) {
        char buf[65536];
        for (;;) {
          ssize_t n = read(c, buf, sizeof(buf));
          if (n <= 0 || write(c, buf, static_cast<size_t>(n)) < 0) break;
        }
        close(c);
        return;
      }
      serve_tcp_connection(c);
    }).detach();
  }
}

void serve_udp(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = address("0.0.0.0", port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) {
    perror("udp bind");
    exit(2);
  }
  char buf[65536];
  for (;;) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) continue;
    std::string reply = g_name + ": " + std::string(buf, static_cast<size_t>(n));
    sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

bool wait_readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

int connect_once(const std::string& proto, const std::string& ip, int port, const std::string& message,
                 int timeout_ms) {
  bool tcp = proto == "tcp";
  int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  sockaddr_in a = address(ip, port);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) {
    bool timed_out = errno == EINPROGRESS || errno == EAGAIN;
    printf("error: connect: %s\n", timed_out ? "timeout" : strerror(errno));
    return timed_out ? kExitTimeout : 1;
  }
  if (send(fd, message.data(), message.size(), 0) < 0) {
    printf("error: send: %s\n", strerror(errno));
    return 1;
  }
  if (!wait_readable(fd, timeout_ms)) {
    printf("error: timeout\n");
    return kExitTimeout;
  }
  char buf[65536];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  if (n <= 0) {
    printf("error: recv: %s\n", n == 0 ? "connection closed" : strerror(errno));
    return 1;
  }
  printf("%.*s\n", static_cast<int>(n), buf);
  close(fd);
  return 0;
}

int stream(const std::string& ip, int port, int duration_ms, int interval_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = address(ip, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) {
    printf("{\"error\": \"connect: %s\"}\n", strerror(errno));
    return 1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  uint64_t sent = 0, received = 0, errors = 0;
  double max_gap_ms = 0;
  auto start = Clock::now(), last = start;
  while (Clock::now() - start < std::chrono::milliseconds(duration_ms)) {
    // Message: a zero byte (raw echo mode) and an 8-byte sequence number.
    char msg[9] = {0};
    std::memcpy(msg + 1, &sent, 8);
    if (send(fd, msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) {
      errors++;
      break;
    }
    sent++;
    char echo[9];
    size_t got = 0;
    while (got < sizeof(echo)) {
      if (!wait_readable(fd, 5000)) break;
      ssize_t n = recv(fd, echo + got, sizeof(echo) - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got != sizeof(echo) || std::memcmp(echo, msg, sizeof(msg)) != 0) {
      errors++;
      break;
    }
    received++;
    auto now = Clock::now();
    max_gap_ms = std::max(max_gap_ms, std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  tcp_info info{};
  socklen_t len = sizeof(info);
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
  close(fd);
  printf("{\"sent\": %llu, \"received\": %llu, \"errors\": %llu, \"retransmits\": %u, \"max_gap_ms\": %.1f}\n",
         static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received),
         static_cast<unsigned long long>(errors), info.tcpi_total_retrans, max_gap_ms);
  return errors == 0 ? 0 : 1;
}

int burst(const std::string& ip, int port, long count) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = address(ip, port);
  long sent = 0;
  for (long i = 0; i < count; i++)
    if (sendto(fd, &i, sizeof(i), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == sizeof(i)) sent++;
  close(fd);
  printf("{\"sent\": %ld}\n", sent);
  return sent == count ? 0 : 1;
}

// One request on a fresh socket: who answered, and whether the peer the
// socket API reports is the address asked for (a VIP stays a VIP).
std::string ask_once(bool tcp, const sockaddr_in& target, int timeout_ms, bool* peer_matches, std::string* error) {
  int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string who;
  sockaddr_in peer{};
  socklen_t peer_len = sizeof(peer);
  char buf[512];
  ssize_t n = -1;
  const char msg[] = "spread";
  if (tcp) {
    if (connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) < 0) {
      *error = std::string("connect: ") + (errno == EINPROGRESS ? "timeout" : strerror(errno));
    } else {
      getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len);
      if (send(fd, msg, sizeof(msg) - 1, 0) < 0)
        *error = std::string("send: ") + strerror(errno);
      else if (!wait_readable(fd, timeout_ms))
        *error = "timeout";
      else if ((n = recv(fd, buf, sizeof(buf), 0)) <= 0)
        *error = n == 0 ? "connection closed" : std::string("recv: ") + strerror(errno);
    }
  } else {
    if (sendto(fd, msg, sizeof(msg) - 1, 0, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) < 0)
      *error = std::string("sendto: ") + strerror(errno);
    else if (!wait_readable(fd, timeout_ms))
      *error = "timeout";
    else if ((n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer), &peer_len)) <= 0)
      *error = std::string("recvfrom: ") + strerror(errno);
  }
  close(fd);
  if (n > 0) {
    std::string reply(buf, static_cast<size_t>(n));
    who = reply.substr(0, reply.find(':'));
    *peer_matches = peer.sin_addr.s_addr == target.sin_addr.s_addr && peer.sin_port == target.sin_port;
  }
  return who;
}

int spread(const std::string& proto, const std::string& ip, int port, int count, int timeout_ms) {
  sockaddr_in target = address(ip, port);
  std::map<std::string, int> answers;
  int errors = 0, peer_matches = 0;
  std::string first_error;
  auto start = Clock::now();
  for (int i = 0; i < count; i++) {
    bool matches = false;
    std::string error;
    std::string who = ask_once(proto == "tcp", target, timeout_ms, &matches, &error);
    if (who.empty()) {
      errors++;
      if (first_error.empty()) first_error = error;
      continue;
    }
    answers[who]++;
    peer_matches += matches;
  }
  double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::string out = "{\"answers\": {";
  for (auto it = answers.begin(); it != answers.end(); ++it)
    out += (it == answers.begin() ? "\"" : ", \"") + it->first + "\": " + std::to_string(it->second);
  printf("%s}, \"errors\": %d, \"first_error\": \"%s\", \"peer_matches\": %d, \"elapsed_ms\": %.1f}\n", out.c_str(),
         errors, first_error.c_str(), peer_matches, elapsed);
  return errors == 0 ? 0 : 1;
}

int rawframe(const std::string& iface, int ip_bytes, int count) {
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) {
    printf("error: packet socket: %s\n", strerror(errno));
    return 1;
  }
  ifreq ifr{};
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface.c_str());
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    printf("error: %s: %s\n", iface.c_str(), strerror(errno));
    return 1;
  }
  // Broadcast destination, the interface's own source, EtherType IPv4, then the start
  // of a plausible header (version 4, IHL 5, TTL 64, UDP) cut after ip_bytes bytes.
  unsigned char frame[14 + 20] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
  frame[12] = 0x08;
  frame[13] = 0x00;
  const unsigned char header[20] = {0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
  memcpy(frame + 14, header, sizeof(header));
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
  to.sll_halen = 6;
  memset(to.sll_addr, 0xff, 6);
  size_t len = 14 + static_cast<size_t>(std::max(0, std::min(ip_bytes, 20)));
  int sent = 0;
  for (int i = 0; i < count; i++)
    if (sendto(fd, frame, len, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == static_cast<ssize_t>(len)) sent++;
  printf("{\"sent\": %d, \"frame_bytes\": %zu}\n", sent, len);
  close(fd);
  return sent == count ? 0 : 1;
}

int hold(const std::string& kind, const std::string& target, int port, int count, int hold_ms, const std::string& text,
         const std::string& ready_file) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::vector<int> fds;
  int refused = 0;
  std::string first_error;
  for (int i = 0; i < count; i++) {
    int fd = -1;
    int rc = -1;
    if (kind == "unix") {
      fd = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un sun{};
      sun.sun_family = AF_UNIX;
      snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", target.c_str());
      if (fd >= 0) rc = connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun));
    } else {
      fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sin = address(target, port);
      if (fd >= 0) rc = connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    }
    if (rc == 0 && send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size())) {
      fds.push_back(fd);
      continue;
    }
    if (first_error.empty()) first_error = strerror(errno);
    refused++;
    if (fd >= 0) close(fd);
  }
  if (!ready_file.empty()) {
    FILE* f = fopen(ready_file.c_str(), "w");
    if (f) fclose(f);
  }
  if (hold_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  } else {
    char c;
    while (read(0, &c, 1) < 0 && errno == EINTR) {
    }
  }
  int closed_by_peer = 0;  // the server answered (an error) or closed: anything but "still waiting"
  for (int fd : fds) {
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) closed_by_peer++;
    close(fd);
  }
  printf("{\"opened\": %zu, \"refused\": %d, \"first_error\": \"%s\", \"closed_by_peer\": %d}\n", fds.size(), refused,
         first_error.c_str(), closed_by_peer);
  return 0;
}

// Installs a seccomp filter under which bpf() fails with ENOSYS, then execs argv.
int without_bpf(char** argv) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
    perror("netprobe without-bpf: seccomp");
    return 1;
  }
  execvp(argv[0], argv);
  perror("netprobe without-bpf: exec");
  return 127;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve") {
    g_name = arg_value(argc, argv, "--name", g_name);
    int tcp = std::stoi(arg_value(argc, argv, "--tcp", "0"));
    int udp = std::stoi(arg_value(argc, argv, "--udp", "0"));
    std::vector<std::thread> servers;
    if (tcp) servers.emplace_back(serve_tcp, tcp);
    if (udp) servers.emplace_back(serve_udp, udp);
    for (auto& t : servers) t.join();
    return 0;
  }
  if (mode == "connect" && argc >= 5)
    return connect_once(argv[2], argv[3], std::stoi(argv[4]), arg_value(argc, argv, "--message", "ping"),
                        std::stoi(arg_value(argc, argv, "--timeout-ms", "2000")));
  if (mode == "stream" && argc >= 4)
    return stream(argv[2], std::stoi(argv[3]), std::stoi(arg_value(argc, argv, "--duration-ms", "5000")),
                  std::stoi(arg_value(argc, argv, "--interval-ms", "10")));
  if (mode == "burst" && argc >= 4)
    return burst(argv[2], std::stoi(argv[3]), std::stol(arg_value(argc, argv, "--count", "1000")));
  if (mode == "spread" && argc >= 5)
    return spread(argv[2], argv[3], std::stoi(argv[4]), std::stoi(arg_value(argc, argv, "--count", "10")),
                  std::stoi(arg_value(argc, argv, "--timeout-ms", "2000")));
  if (mode == "rawframe" && argc >= 3)
    return rawframe(argv[2], std::stoi(arg_value(argc, argv, "--ip-bytes", "0")),
                    std::stoi(arg_value(argc, argv, "--count", "1")));
  if (mode == "hold" && argc >= 4) {
    bool unix_socket = std::string(argv[2]) == "unix";
    return hold(argv[2], argv[3], unix_socket ? 0 : std::stoi(argv[4]), std::stoi(arg_value(argc, argv, "--count", "1")),
                std::stoi(arg_value(argc, argv, "--hold-ms", "1000")),
                arg_value(argc, argv, "--send", "GET /metrics HTTP/1.1\r\nHost: pilus\r\nX-Slow: "),
                arg_value(argc, argv, "--ready-file", ""));
  }
  if (mode == "without-bpf" && argc >= 4 && std::string(argv[2]) == "--") return without_bpf(argv + 3);
  fprintf(stderr, "usage: netprobe serve|connect|stream|burst|spread|rawframe|hold|without-bpf ... (see the top of netprobe.cpp)\n");
  return 2;
}
