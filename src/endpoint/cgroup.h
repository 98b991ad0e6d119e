// The cgroup (v2) pilus creates for its pods' processes; later the socket
// load balancer attaches there, and never to a cgroup pilus did not create.
#pragma once

#include <string>
#include <vector>

namespace pilus::endpoint {

// Where cgroup2 is mounted (/sys/fs/cgroup or /sys/fs/cgroup/unified).
std::string cgroup2_mount();

class PodCgroup {
 public:
  // name: a directory directly under the cgroup2 mount, created if missing.
  explicit PodCgroup(const std::string& name);
  const std::string& path() const { return path_; }
  std::vector<int> pids() const;

  // Kills every process left in the cgroup named `name` and removes it.
  static void destroy(const std::string& name);

 private:
  std::string path_;
};

}  // namespace pilus::endpoint
