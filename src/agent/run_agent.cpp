#include "agent/run_agent.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/api_routes.h"
#include "api/http_server.h"
#include "common/error.h"
#include "endpoint/pod_process.h"
#include "metrics/prometheus_text.h"

namespace pilus::agent {

std::string pidfile_path(const std::string& state_dir) { return state_dir + "/agent.pid"; }

namespace {

// One agent per state dir: a second one would fight over the same pods.
int lock_state_dir(const std::string& state_dir) {
  std::filesystem::create_directories(state_dir);
  std::string path = state_dir + "/agent.lock";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw system_error("opening " + path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    close(fd);
    fail("another pilus agent is running with state dir {}", state_dir);
  }
  return fd;
}

// Every connection the agent serves or proxies is a descriptor: take all the hard limit allows,
// so the soft default (often 1024) is not what a busy pod (or a hostile one) runs into first.
void raise_descriptor_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlim_t old = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
      spdlog::warn("cannot raise the descriptor limit from {} to {}: {}", old, lim.rlim_max, strerror(errno));
    else
      spdlog::info("descriptor limit raised from {} to {} (the hard limit)", old, lim.rlim_max);
  }
  if (lim.rlim_cur < 4096)
    spdlog::warn("descriptor limit is {}: every API, metrics and proxied connection takes one", lim.rlim_cur);
}

api::ServerLimits server_limits(const AgentConfig& c, uint32_t max_connections) {
  api::ServerLimits l;
  l.max_connections = max_connections;
  l.header_timeout = std::chrono::seconds(c.api_header_timeout_s);
  l.idle_timeout = std::chrono::seconds(c.api_idle_timeout_s);
  l.max_body = c.api_max_request_bytes;
  return l;
}

// What the API and metrics servers closed or refused, and how many connections they hold.
std::string server_metrics_text(const std::vector<std::pair<std::string, const api::HttpServer*>>& servers) {
  metrics::PrometheusText t;
  t.family("pilus_api_refused_connections_total", "counter",
           "Connections the agent's API or metrics server closed or refused, by reason.");
  for (const auto& [name, server] : servers)
    for (const auto& [reason, n] : server->refusals())
      t.sample("pilus_api_refused_connections_total", {{"server", name}, {"reason", reason}}, double(n));
  t.family("pilus_api_connections", "gauge", "Open connections (streams included) of the agent's API or metrics server.");
  for (const auto& [name, server] : servers)
    t.sample("pilus_api_connections", {{"server", name}}, double(server->connections()));
  return t.text();
}

}  // namespace

int run_agent(const AgentConfig& config) {
  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  raise_descriptor_limit();
  int lock_fd = lock_state_dir(config.state_dir);
  // Listen first: an address in use must stop the agent before it changes anything.
  auto server = api::HttpServer::unix_socket(config.socket);
  server->set_limits(server_limits(config, config.api_max_connections));
  std::unique_ptr<api::HttpServer> metrics;
  if (!config.metrics_addr.empty()) {
    metrics = api::HttpServer::tcp(config.metrics_addr);
    metrics->set_limits(server_limits(config, config.metrics_max_connections));
  }
  Agent agent(config);
  register_api_routes(*server, agent);
  server->start();
  if (metrics) {
    // Its own server, I/O thread and handler threads: scrapers (any local user) never share them with the API.
    metrics->handle("GET", "/metrics", [&agent, &server, &metrics](const api::Request&) {
      api::Response r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = agent.metrics_text() + server_metrics_text({{"api", server.get()}, {"metrics", metrics.get()}});
      return r;
    });
    metrics->start(2);
    spdlog::info("serving Prometheus metrics on {}/metrics", config.metrics_addr);
  }
  {
    std::ofstream pidfile(pidfile_path(config.state_dir), std::ios::trunc);
    pidfile << getpid() << " " << endpoint::process_start_time(getpid()).value_or(0) << "\n";
  }
  spdlog::info("serving the API on {}", config.socket);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}: stopping the agent; the datapath keeps running", strsignal(sig));
  if (metrics) metrics->stop();
  server->stop();
  std::filesystem::remove(config.socket);
  std::filesystem::remove(pidfile_path(config.state_dir));
  close(lock_fd);
  return 0;
}

}  // namespace pilus::agent
