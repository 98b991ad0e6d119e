// A host outside the node: a network namespace the test owns, linked to the node by a
// veth with a connected /30, so the node itself can reach it. Pods must not: the
// datapath drops pod traffic to it as NO_ROUTE_TO_OUTSIDE. Tests use it instead of an
// address nobody owns, so that nothing is ever sent towards the real network.
#pragma once

#include <memory>
#include <string>

#include "e2e/harness.h"

namespace pilus::e2e {

class OutsideHost {
 public:
  // Serves netprobe's echo on tcp_port and udp_port; answers ping.
  OutsideHost(int tcp_port, int udp_port);
  ~OutsideHost();
  OutsideHost(const OutsideHost&) = delete;
  OutsideHost& operator=(const OutsideHost&) = delete;

  const std::string& ip() const { return ip_; }            // the outside host's address
  const std::string& netns() const { return netns_; }
  const std::string& name() const { return name_; }  // the name its server answers with

 private:
  std::string netns_, host_link_, ip_, node_ip_, name_ = "outside";
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace pilus::e2e
