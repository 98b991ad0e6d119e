// The words e2e scenarios are written in: pods by name, the node,
// and expectations such as expect_reachable(pod("alpha"), pod("beta"), 80, "tcp").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "e2e/harness.h"

namespace pilus::e2e {

// Where traffic starts or ends.
struct Peer {
  std::string name;   // servers reply "NAME: <msg>", so a reply proves who answered
  std::string ip;
  std::string netns;  // empty: the host namespace
};

// One attempt: proto is "tcp", "udp" or "icmp" (port ignored).
struct Probe {
  Peer from, to;
  int port = 0;
  std::string proto;

  std::string describe() const;
};

// Every server pod listens on these; the node's test server on kNodePort.
inline constexpr int kTcpPort = 80;
inline constexpr int kUdpPort = 53;
inline constexpr int kNodePort = 8080;

// A test with its own agent and namespace; TearDown always cleans both up.
class PodNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Overridden by suites that need another pod CIDR size.
  virtual TestAgent::Options agent_options() const { return {}; }

  TestAgent& agent() { return *agent_; }
  std::string ns() const { return agent_->ns(); }

  // Pods of the test's namespace; labels default to app=<name>.
  PodManifest server_pod(const std::string& name, std::map<std::string, std::string> labels = {}) const;
  PodManifest idle_pod(const std::string& name, std::map<std::string, std::string> labels = {}) const;
  // Applies the pods in one manifest and waits until each server pod listens.
  void create_pods(const std::vector<PodManifest>& pods);
  void delete_pods(const std::vector<PodManifest>& pods);

  Peer pod(const std::string& name) const;
  Peer node() const;  // the host namespace, reached at the router IP

  // proto is "tcp" or "udp"; reachable means the named server answered.
  void expect_reachable(const Peer& from, const Peer& to, int port, const std::string& proto);
  // A drop is proven, not assumed: the attempt timed out (a refusal, a reset or a tool
  // that did not run is no proof), the datapath reported a drop of that very traffic,
  // and the same server answers a client that is allowed (see expect_dropped).
  void expect_unreachable(const Peer& from, const Peer& to, int port, const std::string& proto);
  void expect_ping(const Peer& from, const Peer& to);
  void expect_no_ping(const Peer& from, const Peer& to);

  // The evidence behind every "denied": `attempt` is the probe's result (netprobe connect
  // for tcp/udp, ping for icmp). control_checked: a positive control for this server
  // already ran (a matrix answered it), so no extra one from the node is needed.
  void expect_dropped(const Probe& p, const CommandResult& attempt, bool control_checked = false);
  // Waits (generously) until `pilus observe` holds a DROPPED flow of that traffic.
  void expect_drop_flow(const Probe& p);

  // Packets the datapath counted for a pod's endpoint under a reason (FORWARDED,
  // NO_ROUTE_TO_OUTSIDE, ...) and direction ("ingress", "egress", or "" for both).
  uint64_t datapath_packets(const std::string& pod_name, const std::string& reason, const std::string& direction = "");

  // Runs argv in the peer's namespace.
  CommandResult run_at(const Peer& where, const std::vector<std::string>& argv,
                       std::chrono::milliseconds timeout = 30s) const;

  std::unique_ptr<TestAgent> agent_;

 private:
  void wait_listening(const std::string& pod_name, int port, const std::string& proto);
  CommandResult connect(const Peer& from, const Peer& to, int port, const std::string& proto, int timeout_ms);
};

}  // namespace pilus::e2e
