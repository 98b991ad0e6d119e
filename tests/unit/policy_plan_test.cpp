// Unit tests for the policies' part of an apply's plan (controller/policy_plan.h): the keys
// policies are stored under, the namespace check, and conversion errors and warnings surfacing
// before anything changes. No root, no kernel.
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controller/policy_plan.h"
#include "manifest/object.h"
#include "unit/error_of.h"

namespace pilus::controller {
namespace {

using ::testing::HasSubstr;
using pilus::testing::error_of;

Objects objects(const std::string& yaml) {
  Objects out;
  for (auto& doc : manifest::parse_documents(manifest::Source{"policy.yaml", yaml})) {
    auto obj = manifest::parse_object(doc);
    out.emplace_back(std::move(doc), std::move(obj));
  }
  return out;
}

const char* kNetworkPolicy = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-in
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - port: 80
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: everyone
spec:
  endpointSelector: {}
  egress:
  - toEntities:
    - host
---
apiVersion: v1
kind: Namespace
metadata:
  name: other
)";

TEST(PolicyPlan, ConvertsEveryPolicyUnderItsKey) {
  std::vector<std::string> warnings;
  auto planned = plan_policies(objects(kNetworkPolicy), {"default", "shop"}, warnings);
  ASSERT_EQ(planned.size(), 2u);
  EXPECT_TRUE(planned.count("NetworkPolicy/shop/web-in"));
  EXPECT_TRUE(planned.count("CiliumClusterwideNetworkPolicy//everyone")) << "a clusterwide policy has no namespace";
  EXPECT_FALSE(planned.at("NetworkPolicy/shop/web-in").rules.empty());
  EXPECT_FALSE(planned.at("NetworkPolicy/shop/web-in").default_deny.empty());
}

TEST(PolicyPlan, RefusesAPolicyInAnUnknownNamespace) {
  std::vector<std::string> warnings;
  EXPECT_THAT(error_of([&] { plan_policies(objects(kNetworkPolicy), {"default"}, warnings); }),
              HasSubstr("metadata.namespace: namespace \"shop\" not found"));
}

TEST(PolicyPlan, RefusesABadRuleNamingItsField) {
  std::vector<std::string> warnings;
  std::string bad = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: bad
spec:
  podSelector: {}
  ingress:
  - ports:
    - port: 70000
)";
  std::string error = error_of([&] { plan_policies(objects(bad), {"default"}, warnings); });
  EXPECT_THAT(error, HasSubstr("default/bad")) << error;
  EXPECT_THAT(error, HasSubstr("70000")) << error;
}

TEST(PolicyPlan, IgnoresOtherKinds) {
  std::vector<std::string> warnings;
  auto planned = plan_policies(objects("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"), {"default"}, warnings);
  EXPECT_TRUE(planned.empty());
  EXPECT_TRUE(warnings.empty());
}

}  // namespace
}  // namespace pilus::controller
