#include "agent/run_agent.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/api_routes.h"
#include "api/http_server.h"
#include "common/error.h"
#include "endpoint/pod_process.h"

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

}  // namespace

int run_agent(const AgentConfig& config) {
  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  int lock_fd = lock_state_dir(config.state_dir);
  // Listen first: an address in use must stop the agent before it changes anything.
  auto server = api::HttpServer::unix_socket(config.socket);
  std::unique_ptr<api::HttpServer> metrics;
  if (!config.metrics_addr.empty()) metrics = api::HttpServer::tcp(config.metrics_addr);
  Agent agent(config);
  register_api_routes(*server, agent);
  server->start();
  if (metrics) {
    metrics->handle("GET", "/metrics", [&agent](const api::Request&) {
      api::Response r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = agent.metrics_text();
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
