#include "datapath/sock_lb.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "sock_lb_bpf.skel.h"

namespace pilus::datapath {

namespace {

void reuse(bpf_map* map, int fd) {
  if (bpf_map__reuse_fd(map, fd) < 0) throw system_error(std::string("sharing BPF map ") + bpf_map__name(map), errno);
}

// Attaches `prog` to the cgroup through a link pinned at `pin`; an existing
// pinned link (an earlier agent's) gets the new program atomically instead.
void attach_pinned(bpf_program* prog, int cgroup_fd, const std::string& pin) {
  bpf_link* old = access(pin.c_str(), F_OK) == 0 ? bpf_link__open(pin.c_str()) : nullptr;
  if (old) {
    int err = bpf_link__update_program(old, prog);
    bpf_link__disconnect(old);  // the pin keeps it attached
    bpf_link__destroy(old);
    if (err == 0) return;
    spdlog::warn("replacing stale socket LB link {}: {}", pin, strerror(-err));
    unlink(pin.c_str());
  }
  bpf_link* link = bpf_program__attach_cgroup(prog, cgroup_fd);
  if (!link) throw system_error("attaching " + std::string(bpf_program__name(prog)) + " to the pod cgroup", errno);
  int err = bpf_link__pin(link, pin.c_str());
  bpf_link__disconnect(link);
  bpf_link__destroy(link);
  if (err) throw system_error("pinning " + pin, -err);
}

}  // namespace

SocketLoadBalancer::SocketLoadBalancer(const Datapath& datapath, const std::string& cgroup_path) {
  skel_ = sock_lb_bpf__open();
  if (!skel_) throw system_error("opening the socket LB BPF object", errno);
  try {
    const DatapathConfig& c = datapath.config();
    skel_->rodata->lb_maglev_size = c.maglev_size;
    skel_->rodata->lb_random = c.lb_random;
    // Sizes come with the reused maps; the rodata must match the pod programs'.
    reuse(skel_->maps.lb_services, datapath.lb_services().fd());
    reuse(skel_->maps.lb_backends, datapath.lb_backends().fd());
    reuse(skel_->maps.lb_maglev, datapath.lb_maglev().fd());
    reuse(skel_->maps.lb_affinity, datapath.lb_affinity().fd());
    reuse(skel_->maps.metrics, datapath.metrics().fd());
    if (c.pin) bpf_map__set_pin_path(skel_->maps.lb_sock_revnat, (c.bpf_root + "/lb_sock_revnat").c_str());
    int err = sock_lb_bpf__load(skel_);
    if (err) throw system_error("loading the socket LB BPF programs", -err);
    if (c.pin) attach(c.bpf_root, cgroup_path);
  } catch (...) {
    sock_lb_bpf__destroy(skel_);
    throw;
  }
}

SocketLoadBalancer::~SocketLoadBalancer() { sock_lb_bpf__destroy(skel_); }

void SocketLoadBalancer::attach(const std::string& bpf_root, const std::string& cgroup_path) {
  int fd = open(cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw system_error("opening cgroup " + cgroup_path, errno);
  try {
    attach_pinned(skel_->progs.sock_connect4, fd, bpf_root + "/link_sock_connect4");
    attach_pinned(skel_->progs.sock_sendmsg4, fd, bpf_root + "/link_sock_sendmsg4");
    attach_pinned(skel_->progs.sock_recvmsg4, fd, bpf_root + "/link_sock_recvmsg4");
    attach_pinned(skel_->progs.sock_getpeername4, fd, bpf_root + "/link_sock_getpeername4");
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
}

int SocketLoadBalancer::connect4_fd() const { return bpf_program__fd(skel_->progs.sock_connect4); }
int SocketLoadBalancer::sendmsg4_fd() const { return bpf_program__fd(skel_->progs.sock_sendmsg4); }
int SocketLoadBalancer::recvmsg4_fd() const { return bpf_program__fd(skel_->progs.sock_recvmsg4); }
int SocketLoadBalancer::getpeername4_fd() const { return bpf_program__fd(skel_->progs.sock_getpeername4); }

}  // namespace pilus::datapath
