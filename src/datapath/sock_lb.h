// The socket-level service load balancer: the cgroup sock_addr programs of
// bpf/sock_lb.bpf.c, sharing the pod datapath's LB maps, attached with BPF
// links to pilus's own pod cgroup (never another one). The links are pinned,
// so they outlive the agent; a new agent swaps its programs into them.
#pragma once

#include <string>

#include "datapath/datapath.h"

struct sock_lb_bpf;

namespace pilus::datapath {

class SocketLoadBalancer {
 public:
  // cgroup_path: the cgroup pilus created for its pods. With datapath pins
  // off (BPF tests), nothing is pinned and nothing is attached.
  SocketLoadBalancer(const Datapath& datapath, const std::string& cgroup_path);
  ~SocketLoadBalancer();
  SocketLoadBalancer(const SocketLoadBalancer&) = delete;
  SocketLoadBalancer& operator=(const SocketLoadBalancer&) = delete;

  int connect4_fd() const;
  int sendmsg4_fd() const;
  int recvmsg4_fd() const;
  int getpeername4_fd() const;

 private:
  void attach(const std::string& bpf_root, const std::string& cgroup_path);

  sock_lb_bpf* skel_ = nullptr;
};

}  // namespace pilus::datapath
