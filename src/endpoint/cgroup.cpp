#include "endpoint/cgroup.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/error.h"

namespace pilus::endpoint {
namespace fs = std::filesystem;

std::string cgroup2_mount() {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest)) {
    if (type == "cgroup2") return dir;
  }
  fail("no cgroup2 filesystem is mounted (pilus needs cgroup v2 for its pods' processes)");
}

PodCgroup::PodCgroup(const std::string& name) : path_(cgroup2_mount() + "/" + name) {
  std::error_code ec;
  fs::create_directories(path_, ec);
  if (ec) fail("creating cgroup {}: {}", path_, ec.message());
}

static std::vector<int> read_pids(const std::string& path) {
  std::vector<int> out;
  std::ifstream procs(path + "/cgroup.procs");
  int pid;
  while (procs >> pid) out.push_back(pid);
  return out;
}

std::vector<int> PodCgroup::pids() const { return read_pids(path_); }

void PodCgroup::destroy(const std::string& name) {
  std::string path = cgroup2_mount() + "/" + name;
  if (!fs::exists(path)) return;
  // Only processes inside pilus's own cgroup: they are the pods' commands.
  for (int attempt = 0; attempt < 50; attempt++) {
    auto pids = read_pids(path);
    if (pids.empty()) break;
    for (int pid : pids) kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (rmdir(path.c_str()) < 0 && errno != ENOENT) throw system_error("removing cgroup " + path, errno);
}

}  // namespace pilus::endpoint
