// Security identities: one per distinct label set and namespace, stable across restarts, freed with their last pod.
#include <signal.h>

#include "e2e/scenario.h"

namespace pilus::e2e {
namespace {

using Identities = PodNetworkTest;

class IdentityBook {
 public:
  explicit IdentityBook(const TestAgent& agent) : agent_(agent) {}
  uint32_t of(const std::string& ns, const std::string& pod) const {
    return agent_.pod(ns, pod)["status"]["identity"].get<uint32_t>();
  }
  // The labels `get identities` shows for an id; empty when it is not listed.
  std::string labels(uint32_t id) const {
    for (const auto& i : agent_.identities())
      if (i["id"] == id) return i["labels"].dump();
    return "";
  }
  bool listed(uint32_t id) const { return !labels(id).empty(); }

 private:
  const TestAgent& agent_;
};

TEST_F(Identities, SameLabelsShareAnIdentitySurviveRestartsAndAreFreedWithTheirLastPod) {
  const std::string other_ns = ns() + "-other";
  agent().apply(namespace_yaml(other_ns));
  PodManifest elsewhere{other_ns, "web-3", {{"app", "web"}}, {}};
  create_pods({idle_pod("web-1", {{"app", "web"}}), idle_pod("web-2", {{"app", "web"}}),
               idle_pod("db", {{"app", "db"}}), elsewhere});
  IdentityBook ids(agent());

  const uint32_t web = ids.of(ns(), "web-1"), db = ids.of(ns(), "db"), web_elsewhere = ids.of(other_ns, "web-3");
  EXPECT_EQ(ids.of(ns(), "web-2"), web) << "same labels, same namespace: one identity";
  EXPECT_NE(db, web) << "other labels: another identity";
  EXPECT_NE(web_elsewhere, web) << "the namespace is part of the identity";
  for (uint32_t id : {web, db, web_elsewhere}) EXPECT_GE(id, 256u) << "pod identities start at 256";
  EXPECT_NE(ids.labels(web).find("app=web"), std::string::npos) << ids.labels(web);
  EXPECT_NE(ids.labels(db).find("app=db"), std::string::npos) << ids.labels(db);

  for (int signal : {SIGTERM, SIGKILL}) {
    agent().restart(signal);
    EXPECT_EQ(ids.of(ns(), "web-1"), web) << "after restart by signal " << signal;
    EXPECT_EQ(ids.of(ns(), "web-2"), web) << "after restart by signal " << signal;
    EXPECT_EQ(ids.of(ns(), "db"), db) << "after restart by signal " << signal;
    EXPECT_EQ(ids.of(other_ns, "web-3"), web_elsewhere) << "after restart by signal " << signal;
    EXPECT_TRUE(ids.listed(web) && ids.listed(db) && ids.listed(web_elsewhere));
  }

  delete_pods({idle_pod("web-1", {{"app", "web"}})});
  EXPECT_TRUE(ids.listed(web)) << "web-2 still uses it";
  delete_pods({idle_pod("web-2", {{"app", "web"}}), idle_pod("db", {{"app", "db"}}), elsewhere});
  EXPECT_FALSE(ids.listed(web)) << ids.labels(web);
  EXPECT_FALSE(ids.listed(db)) << ids.labels(db);
  EXPECT_FALSE(ids.listed(web_elsewhere)) << ids.labels(web_elsewhere);
}

}  // namespace
}  // namespace pilus::e2e
