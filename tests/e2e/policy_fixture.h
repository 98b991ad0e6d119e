// Policy e2e vocabulary: server pods in any namespace, traffic matrices probed all at once, policy CLI views.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e/scenario.h"

namespace pilus::e2e {

// Every policy server pod also listens here, so "another port" is refused by policy, not by an empty port.
inline constexpr int kAltTcpPort = 8080;
inline constexpr int kAltUdpPort = 5353;

// Replaces each placeholder ("$NS", "$CIDR", ...) by its value.
std::string fill(std::string text, const std::map<std::string, std::string>& values);

// The step of a `pilus policy trace` for one direction ("ingress" / "egress"), or an empty object.
nlohmann::json trace_step(const nlohmann::json& trace, const std::string& direction);

// A traffic matrix: which probes must get an answer and which must not.
struct Matrix {
  std::vector<Probe> answered, unanswered;

  Matrix& allow(const Peer& from, const Peer& to, int port, const std::string& proto) {
    answered.push_back({from, to, port, proto});
    return *this;
  }
  Matrix& deny(const Peer& from, const Peer& to, int port, const std::string& proto) {
    unanswered.push_back({from, to, port, proto});
    return *this;
  }
  // The same probes, every one expected to answer (before any policy).
  Matrix all_answered() const;
};

// A long TCP connection (`netprobe stream`) running in the background.
class Stream {
 public:
  Stream(const Peer& from, const Peer& to, int port, int duration_ms);
  // Waits for the end and returns netprobe's JSON summary ({"sent","received","errors",...}).
  nlohmann::json result();

 private:
  std::string what_;
  std::unique_ptr<ChildProcess> child_;
};

class PolicyTest : public PodNetworkTest {
 protected:
  void TearDown() override;

  // A name nobody else uses, for pods in the shared "default" namespace.
  std::string unique(const std::string& base) const { return base + "-" + agent_->tag(); }
  // A pod answering on 80/tcp, 53/udp, alt_tcp and alt_udp; labels default to app=<name>.
  PodManifest server_in(const std::string& ns, const std::string& name, std::map<std::string, std::string> labels = {},
                        int alt_tcp = kAltTcpPort, int alt_udp = kAltUdpPort);
  void create_namespace(const std::string& name, const std::map<std::string, std::string>& labels = {});
  // Applies the pods in one manifest and waits until each listens on every port.
  void create(const std::vector<PodManifest>& pods);
  Peer at(const std::string& ns, const std::string& name) const;

  // `pilus apply` / `pilus delete` that must succeed.
  CommandResult apply_ok(const std::string& yaml);
  void delete_ok(const std::string& yaml);

  // Runs every probe of the matrix at the same time and reports each that disagrees.
  void verify(const Matrix& m);

  nlohmann::json policies();  // items of `pilus get policies -o json`
  nlohmann::json trace(const std::string& from, const std::string& to, const std::string& dport);
  nlohmann::json bpf_policy(const std::string& pod);  // `pilus bpf policy get NS/POD -o json`
  nlohmann::json status();
  // Policy-drop packets of one pod's endpoint, by reason and direction ("" for both).
  uint64_t drops(const std::string& ns, const std::string& name, const std::string& reason,
                 const std::string& direction = "");

 private:
  std::map<std::string, std::vector<std::pair<int, std::string>>> listening_;  // "ns/name" -> ports
  std::vector<std::string> outside_netns_;  // pod netns the harness does not know about
};

}  // namespace pilus::e2e
