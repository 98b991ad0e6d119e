// The spec the agent hands to `pilus pod-init` through a pipe: every field survives the trip.
#include <gtest/gtest.h>

#include "endpoint/pod_process.h"

namespace pilus::endpoint {
namespace {

TEST(PodProcessSpec, RoundTripsThroughJson) {
  ProcessSpec spec;
  spec.hostname = "web";
  spec.netns = "pl-default_web";
  spec.cgroup_path = "/sys/fs/cgroup/pilus";
  spec.hidden_paths = {"/var/lib/pilus", "/run/pilus/pilus.sock"};
  ContainerProcess c;
  c.name = "app";
  c.argv = {"python3", "-m", "http.server", "80"};
  c.env = {{"POD_NAME", "web"}, {"EMPTY", ""}};
  c.log_path = "/var/lib/pilus/logs/default_web_app.log";
  c.log_fd = 7;
  c.working_dir = "/srv";
  c.uid = 1000;
  c.gid = 1001;
  c.supplemental_groups = {5, 6};
  c.capabilities = {0, 10, 12};
  c.privileged = true;
  c.no_new_privs = false;
  spec.containers = {c, ContainerProcess{.name = "side", .argv = {"sleep", "1"}}};

  ProcessSpec back = process_spec_from_json(nlohmann::json::parse(to_json(spec).dump()));
  EXPECT_EQ(back.hostname, "web");
  EXPECT_EQ(back.netns, spec.netns);
  EXPECT_EQ(back.cgroup_path, spec.cgroup_path);
  EXPECT_EQ(back.hidden_paths, spec.hidden_paths);
  ASSERT_EQ(back.containers.size(), 2u);
  const auto& a = back.containers[0];
  EXPECT_EQ(a.name, "app");
  EXPECT_EQ(a.argv, c.argv);
  EXPECT_EQ(a.env, c.env);
  EXPECT_EQ(a.log_path, c.log_path);
  EXPECT_EQ(a.log_fd, 7);
  EXPECT_EQ(a.working_dir, "/srv");
  EXPECT_EQ(a.uid, 1000u);
  EXPECT_EQ(a.gid, 1001u);
  EXPECT_EQ(a.supplemental_groups, c.supplemental_groups);
  EXPECT_EQ(a.capabilities, c.capabilities);
  EXPECT_TRUE(a.privileged);
  EXPECT_FALSE(a.no_new_privs);
  EXPECT_TRUE(back.privileged()) << "any privileged container makes the pod's mounts privileged";
  const auto& b = back.containers[1];
  EXPECT_EQ(b.working_dir, "/");
  EXPECT_TRUE(b.no_new_privs);
  EXPECT_TRUE(b.capabilities.empty());
}

}  // namespace
}  // namespace pilus::endpoint
