// SIGKILL in the middle of an apply or a delete (at exact points, through the agent's test-only
// PILUS_TEST_CRASH_AT hook) and a restart: the store holds all of the change or none of it,
// nothing the agent created for pods it did not commit is left (namespaces, links, processes of
// its cgroup), and applying the same file again works. Also: a state directory of the old
// one-file-per-key layout is migrated with its pods kept.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "e2e/scenario.h"
#include "store/sqlite_store.h"
#include "store/state_dir.h"

namespace pilus::e2e {
namespace {

namespace fs = std::filesystem;

constexpr int kPods = 8;

class Crash : public PodNetworkTest {
 protected:
  std::string other() const { return ns() + "-c"; }  // the crashed apply's own namespace
  std::vector<PodManifest> pods() const {
    std::vector<PodManifest> out;
    for (int i = 0; i < kPods; ++i) {
      PodManifest p = server_pod("p" + std::to_string(i));
      p.ns = other();
      out.push_back(p);
    }
    return out;
  }
  std::string manifest() const { return join_documents({namespace_yaml(other()), join_pods(pods())}); }

  // Restarts the agent with PILUS_TEST_CRASH_AT=point for it alone: it SIGKILLs itself there.
  void arm(const std::string& point) {
    agent().stop(SIGTERM);
    ::setenv("PILUS_TEST_CRASH_AT", point.c_str(), 1);
    try {
      agent().start();
    } catch (...) {
      ::unsetenv("PILUS_TEST_CRASH_AT");
      throw;
    }
    ::unsetenv("PILUS_TEST_CRASH_AT");
  }
  // The agent died at its crash point: reap it and start it again (unarmed).
  void restart_after_crash(const CommandResult& r) {
    EXPECT_FALSE(r.ok()) << "the agent should have died in the middle: " << r.describe();
    agent().restart(SIGKILL);
  }

  std::set<std::string> stored_pods() {
    std::set<std::string> names;
    for (const auto& p : agent().pods())
      if (p["metadata"]["namespace"] == other()) names.insert(p["metadata"]["name"].get<std::string>());
    return names;
  }
  std::set<std::string> all_pod_names() const {
    std::set<std::string> names;
    for (const auto& p : pods()) names.insert(p.name);
    return names;
  }
  bool namespace_stored() {
    CommandResult r = agent().pilus({"get", "namespaces", "-o", "json"});
    if (!r.ok()) throw HarnessError(r.describe());
    const nlohmann::json items = nlohmann::json::parse(r.out).at("items");
    for (const auto& n : items)
      if (n["metadata"]["name"] == other()) return true;
    return false;
  }

  // Kernel objects of this agent's pods are exactly those of the stored pods.
  void expect_no_debris() {
    std::set<std::string> stored_netns, stored_links;
    std::set<int> stored_pids;
    for (const auto& p : agent().pods()) {
      stored_netns.insert(p["status"]["netns"].get<std::string>());
      stored_links.insert(p["status"]["hostInterface"].get<std::string>());
      if (p["status"]["pid"] != 0) stored_pids.insert(p["status"]["pid"].get<int>());
    }
    for (const auto& n : netns_with_prefix("pl-" + ns())) EXPECT_TRUE(stored_netns.count(n)) << "leaked netns " << n;
    for (const auto& p : pods()) {
      std::string netns = "pl-" + p.ns + "_" + p.name;
      std::string host_if = host_if_of(netns);
      if (!stored_netns.count(netns)) EXPECT_FALSE(link_exists(host_if)) << "leaked link " << host_if << " of " << netns;
    }
    // A stored pod's init and its containers' processes run in that pod's netns: anything
    // else in the agent's cgroup (but the test's own helpers in the host's) is debris.
    std::set<std::string> stored_net_ns;
    for (const auto& n : stored_netns) stored_net_ns.insert(net_ns_id("/run/netns/" + n));
    std::ifstream procs(agent().cgroup_dir() + "/cgroup.procs");
    int pid;
    while (procs >> pid) {
      std::string net = net_ns_id("/proc/" + std::to_string(pid) + "/ns/net");
      if (net.empty()) continue;  // exited meanwhile
      EXPECT_TRUE(stored_pids.count(pid) || stored_net_ns.count(net))
          << "leaked process " << pid << " in the agent's cgroup";
    }
  }
  // The identity of a network namespace (device and inode), from a netns file or /proc/PID/ns/net.
  static std::string net_ns_id(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return "";
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
  static std::string host_if_of(const std::string& netns) {
    uint32_t h = 2166136261u;  // as endpoint::host_if_name
    for (unsigned char c : netns) h = (h ^ c) * 16777619u;
    char name[16];
    snprintf(name, sizeof name, "pl%08x", h);
    return name;
  }

  // The same file applies again and its pods talk to each other.
  void expect_reapply_works() {
    agent().apply(manifest());
    EXPECT_EQ(stored_pods(), all_pod_names());
    const std::string last = "p" + std::to_string(kPods - 1);
    auto peer = [&](const std::string& name) {
      return Peer{name, agent().pod_ip(other(), name), "pl-" + other() + "_" + name};
    };
    // Readiness from the pod's own socket table, as create_pods waits for it.
    agent().wait_listening(other(), last, kTcpPort);
    expect_reachable(peer("p0"), peer(last), kTcpPort, "tcp");
  }
};

class ApplyCrash : public Crash, public ::testing::WithParamInterface<const char*> {};

TEST_P(ApplyCrash, StoreIsAllOrNoneNoDebrisAndTheFileAppliesAgain) {
  const std::string point = GetParam();
  arm(point);
  restart_after_crash(agent().try_apply(manifest()));
  if (point == std::string("committed:1")) {
    EXPECT_EQ(stored_pods(), all_pod_names()) << "killed after the commit: all of the apply";
    EXPECT_TRUE(namespace_stored());
  } else {
    EXPECT_EQ(stored_pods(), std::set<std::string>{}) << "killed before the commit: none of the apply";
    EXPECT_FALSE(namespace_stored());
  }
  expect_no_debris();
  expect_reapply_works();
  expect_no_debris();
}

INSTANTIATE_TEST_SUITE_P(Points, ApplyCrash,
                         ::testing::Values("pod:1", "pod:4", "pod:8", "commit:1", "committed:1"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (auto& c : name)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

TEST_F(Crash, ADeleteKilledBeforeItsCommitKeepsEveryPodWorking) {
  agent().apply(manifest());
  arm("delete-commit:1");
  restart_after_crash(agent().try_remove(join_pods(pods())));
  EXPECT_EQ(stored_pods(), all_pod_names());
  expect_no_debris();
  expect_reapply_works();
}

TEST_F(Crash, ADeleteKilledAfterItsCommitLeavesNothingOfItsPods) {
  agent().apply(manifest());
  arm("delete-committed:1");
  restart_after_crash(agent().try_remove(join_pods(pods())));
  EXPECT_EQ(stored_pods(), std::set<std::string>{});
  expect_no_debris();
  EXPECT_THAT(netns_with_prefix("pl-" + other()), ::testing::IsEmpty());
  expect_reapply_works();
}

// The state directory as agents before the SQLite store wrote it: one JSON file per document,
// <dir>/<collection>/<percent-encoded key>.json. Made here from a stopped agent's store.
void rewrite_in_the_old_layout(const std::string& dir) {
  {
    store::SqliteStore db(dir + "/store.db");
    for (const auto& kv : db.range("/")) {
      auto slash = kv.key.find('/', 1);
      std::string collection = kv.key.substr(1, slash - 1), key = kv.key.substr(slash + 1);
      fs::create_directories(dir + "/" + collection);
      std::ofstream(dir + "/" + collection + "/" + store::key_file_name(key)) << kv.value.dump(2) << "\n";
    }
  }
  for (const char* f : {"store.db", "store.db-wal", "store.db-shm"}) fs::remove(dir + "/" + f);
}

TEST_F(Crash, AnAgentOfTheOldFileLayoutRestartsWithItsPods) {
  agent().apply(manifest());
  const auto before = agent().pods();
  agent().stop(SIGKILL);
  rewrite_in_the_old_layout(agent().state_dir());
  ASSERT_TRUE(fs::exists(agent().state_dir() + "/pods"));
  agent().start();
  EXPECT_FALSE(fs::exists(agent().state_dir() + "/pods")) << "migrated into the store";
  EXPECT_EQ(stored_pods(), all_pod_names());
  ASSERT_FALSE(before.empty()) << "no pods to compare";
  for (const auto& p : before)
    EXPECT_EQ(agent().pod_ip(p["metadata"]["namespace"], p["metadata"]["name"]), p["status"]["podIP"]) << p.dump();
  expect_no_debris();
  expect_reapply_works();
}

// With PILUS_PREVIOUS_BIN set to a pilus of the file layout (built from a commit before the
// SQLite store): pods made by an agent of that version are kept by this one on the same state dir.
TEST_F(Crash, AnAgentOfThePreviousVersionIsUpgradedWithItsPods) {
  const char* previous = std::getenv("PILUS_PREVIOUS_BIN");
  if (!previous || !*previous) GTEST_SKIP() << "PILUS_PREVIOUS_BIN (a pilus binary of the file layout) is not set";
  const std::string current = pilus_bin();
  agent().stop(SIGTERM);
  fs::remove_all(agent().state_dir());
  nlohmann::json before;
  ::setenv("PILUS_BIN", previous, 1);
  try {
    agent().start();
    agent().apply(manifest());
    before = agent().pods();
    agent().stop(SIGTERM);
  } catch (...) {
    ::setenv("PILUS_BIN", current.c_str(), 1);
    throw;
  }
  ::setenv("PILUS_BIN", current.c_str(), 1);
  ASSERT_TRUE(fs::exists(agent().state_dir() + "/pods")) << "the previous version writes one file per object";
  agent().start();
  EXPECT_FALSE(fs::exists(agent().state_dir() + "/pods")) << "migrated into the store";
  EXPECT_EQ(stored_pods(), all_pod_names());
  ASSERT_FALSE(before.empty()) << "no pods to compare";
  for (const auto& p : before)
    EXPECT_EQ(agent().pod_ip(p["metadata"]["namespace"], p["metadata"]["name"]), p["status"]["podIP"]) << p.dump();
  expect_no_debris();
  expect_reapply_works();
}

}  // namespace
}  // namespace pilus::e2e
