// Applies are written to the store in one transaction each (store/write_batch.h), and stay all
// or nothing on disk: after a refused apply and a crash, the restarted agent has what it had before; after a
// big apply or delete and a crash, all of it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <set>
#include <string>

#include "e2e/harness.h"

namespace pilus::e2e {
namespace {

using ::testing::HasSubstr;

std::string service_yaml(const std::string& ns, const std::string& name) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
         "\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n    targetPort: 8080\n";
}

// Ingress from everywhere on `ports` ports: that many policy map entries for each app=backend pod.
std::string policy_yaml(const std::string& ns, const std::string& name, int ports) {
  std::string y = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: " + name +
                  "\n  namespace: " + ns +
                  "\nspec:\n  endpointSelector:\n    matchLabels:\n      app: backend\n  ingress:\n"
                  "  - fromEntities: [all]\n    toPorts:\n    - ports:\n";
  for (int p = 0; p < ports; ++p) y += "      - {port: \"" + std::to_string(8000 + p) + "\", protocol: TCP}\n";
  return y;
}

nlohmann::json items(const TestAgent& agent, const std::string& what) {
  CommandResult r = agent.pilus({"get", what, "-A", "-o", "json"});
  if (!r.ok()) throw HarnessError(r.describe());
  return nlohmann::json::parse(r.out).at("items");
}

std::set<std::string> namespace_names(const TestAgent& agent) {
  std::set<std::string> names;
  for (const auto& item : items(agent, "namespaces")) names.insert(item["metadata"]["name"].get<std::string>());
  return names;
}

TEST(StoreBatches, ARefusedApplyLeavesTheStoreAsBefore) {
  TestAgent agent({.agent_args = {"--policy-map-max", "3"}});
  agent.apply(join_documents({namespace_yaml(agent.ns()), PodManifest{agent.ns(), "backend", {{"app", "backend"}}, {}}.yaml()}));
  const std::string other = agent.ns() + "-x";
  // Refused after the datapath was asked for four entries in a map of three: nothing was committed.
  CommandResult r = agent.try_apply(join_documents(
      {namespace_yaml(other), service_yaml(agent.ns(), "web"), policy_yaml(agent.ns(), "four-ports", 4)}));
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.err + r.out, HasSubstr("policy map is full")) << r.describe();

  agent.restart(SIGKILL);  // what the disk says, not what memory says
  EXPECT_EQ(namespace_names(agent), (std::set<std::string>{"default", agent.ns()}));
  EXPECT_TRUE(items(agent, "services").empty()) << items(agent, "services").dump();
  EXPECT_TRUE(items(agent, "policies").empty()) << items(agent, "policies").dump();
  EXPECT_EQ(agent.pods().size(), 1u) << agent.pods().dump();
}

TEST(StoreBatches, ARefusedApplyUndoesWhatACreatedPodCommitted) {
  TestAgent agent;
  const std::set<std::string> namespaces_before = namespace_names(agent);
  const std::string other = agent.ns() + "-x";
  // The good pod exists (and its network is recorded) before the broken pod fails: neither it
  // nor the namespace may reach the store, nor its network stay.
  CommandResult r = agent.try_apply(join_documents({namespace_yaml(other), service_yaml(other, "web"),
                                                    PodManifest{other, "good", {{"app", "web"}}, {}}.yaml(),
                                                    PodManifest{other, "broken", {}, {"/nonexistent/e2e-command"}}.yaml()}));
  EXPECT_NE(r.exit_code, 0) << r.describe();

  agent.restart(SIGKILL);
  EXPECT_EQ(namespace_names(agent), namespaces_before);
  EXPECT_FALSE(namespaces_before.count(other));
  EXPECT_TRUE(agent.pods().empty()) << agent.pods().dump();
  EXPECT_TRUE(items(agent, "services").empty()) << items(agent, "services").dump();
  EXPECT_TRUE(netns_with_prefix("pl-" + other).empty());
}

TEST(StoreBatches, ABigApplyAndABigDeleteSurviveACrash) {
  TestAgent agent({.agent_args = {"--lb-max-services", "400"}});
  const std::set<std::string> namespaces_before = namespace_names(agent);
  std::vector<std::string> docs = {namespace_yaml(agent.ns() + "-x")};
  for (int i = 0; i < 300; ++i) {
    docs.push_back(service_yaml(agent.ns() + "-x", "svc-" + std::to_string(i)));
    docs.push_back(policy_yaml(agent.ns() + "-x", "p-" + std::to_string(i), 1));
  }
  const std::string all = join_documents(docs);
  agent.apply(all);
  agent.restart(SIGKILL);
  EXPECT_EQ(items(agent, "services").size(), 300u);
  EXPECT_EQ(items(agent, "policies").size(), 300u);
  EXPECT_TRUE(namespace_names(agent).count(agent.ns() + "-x"));

  agent.remove(all);
  agent.restart(SIGKILL);
  EXPECT_TRUE(items(agent, "services").empty());
  EXPECT_TRUE(items(agent, "policies").empty());
  EXPECT_EQ(namespace_names(agent), namespaces_before);
}

}  // namespace
}  // namespace pilus::e2e
