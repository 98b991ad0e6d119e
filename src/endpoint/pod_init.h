// `pilus pod-init SPEC_FD STATUS_FD`: the first process of a pod, PID 1 of its PID
// namespace (as the pause container / tini is). It reads the ProcessSpec (JSON) from
// SPEC_FD, gives the pod its view of the node (mount namespace: node paths hidden,
// fresh /proc, /sys and /dev, the node's filesystem read-only but /tmp), its hostname,
// then starts each container's command with its user and capabilities. It reports a
// failure on STATUS_FD and closes it once all commands were executed. Then it reaps
// orphans, forwards SIGTERM/SIGINT/SIGHUP to the pod, and exits once every container's
// command has: with 0, or the first container's non-zero code in spec order.
#pragma once

#include <string_view>

namespace pilus::endpoint {

inline constexpr std::string_view kPodInitCommand = "pod-init";

// One failure on the status pipe, written with a single write(2) (atomic under PIPE_BUF).
struct StartFailure {
  int err = 0;  // errno, 0 when `what` says it all
  char what[508] = {};
};

int pod_init_main(int spec_fd, int status_fd);

}  // namespace pilus::endpoint
