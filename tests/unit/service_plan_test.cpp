// Unit tests for the Services' part of an apply's plan (controller/service_plan.h): what it
// refuses, before anything changes, and what it lets through. No root, no kernel.
#include <map>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controller/service_plan.h"
#include "manifest/object.h"
#include "unit/error_of.h"

namespace pilus::controller {
namespace {

using ::testing::HasSubstr;
using pilus::testing::error_of;

Objects objects(const std::string& yaml) {
  Objects out;
  for (auto& doc : manifest::parse_documents(manifest::Source{"svc.yaml", yaml})) {
    auto obj = manifest::parse_object(doc);
    out.emplace_back(std::move(doc), std::move(obj));
  }
  return out;
}

std::string service(const std::string& name, const std::string& ns, const std::string& cluster_ip = "") {
  std::string text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
                     "\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n";
  if (!cluster_ip.empty()) text += "  clusterIP: " + cluster_ip + "\n";
  return text + "---\n";
}

const std::set<std::string> kNamespaces = {"default", "shop"};

TEST(ServicePlan, AcceptsNewServicesWithAndWithoutClusterIp) {
  endpoint::Ipam vips("10.96.0.0/24");
  EXPECT_EQ(error_of([&] {
              plan_services(objects(service("a", "default") + service("b", "shop", "10.96.0.10")), {}, vips,
                            kNamespaces);
            }),
            "<no error>");
  EXPECT_EQ(vips.available(), vips.capacity()) << "planning allocates nothing";
}

TEST(ServicePlan, RefusesAnUnknownNamespace) {
  endpoint::Ipam vips("10.96.0.0/24");
  EXPECT_THAT(error_of([&] { plan_services(objects(service("a", "nowhere")), {}, vips, kNamespaces); }),
              HasSubstr("metadata.namespace: namespace \"nowhere\" not found"));
}

TEST(ServicePlan, RefusesChangingTheClusterIpOfAnExistingService) {
  endpoint::Ipam vips("10.96.0.0/24");
  vips.allocate_specific(endpoint::parse_ipv4("10.96.0.7"));
  std::map<std::string, endpoint::Ipv4> existing = {{"default/a", endpoint::parse_ipv4("10.96.0.7")}};
  EXPECT_THAT(error_of([&] { plan_services(objects(service("a", "default", "10.96.0.8")), existing, vips, kNamespaces); }),
              HasSubstr("spec.clusterIP: a service's cluster IP cannot change (it is 10.96.0.7)"));
  // The same address, or none, is no change.
  EXPECT_EQ(error_of([&] { plan_services(objects(service("a", "default", "10.96.0.7")), existing, vips, kNamespaces); }),
            "<no error>");
  EXPECT_EQ(error_of([&] { plan_services(objects(service("a", "default")), existing, vips, kNamespaces); }),
            "<no error>");
}

TEST(ServicePlan, RefusesClusterIpsOutsideTheUsableRange) {
  endpoint::Ipam vips("10.96.0.0/24");
  for (const char* ip : {"10.97.0.5", "10.96.0.0", "10.96.0.1", "10.96.0.255"})
    EXPECT_THAT(error_of([&] { plan_services(objects(service("a", "default", ip)), {}, vips, kNamespaces); }),
                HasSubstr("is not a usable address of the service CIDR 10.96.0.0/24"))
        << ip;
}

TEST(ServicePlan, RefusesATakenOrTwiceAskedClusterIp) {
  endpoint::Ipam vips("10.96.0.0/24");
  vips.allocate_specific(endpoint::parse_ipv4("10.96.0.9"));
  EXPECT_THAT(error_of([&] { plan_services(objects(service("a", "default", "10.96.0.9")), {}, vips, kNamespaces); }),
              HasSubstr("10.96.0.9 is already used by another service"));
  EXPECT_THAT(error_of([&] {
                plan_services(objects(service("a", "default", "10.96.0.20") + service("b", "default", "10.96.0.20")),
                              {}, vips, kNamespaces);
              }),
              HasSubstr("10.96.0.20 is also asked for by"));
}

TEST(ServicePlan, RefusesMoreServicesThanTheCidrHolds) {
  endpoint::Ipam vips("10.96.0.0/28");
  std::string many;
  for (size_t i = 0; i <= vips.available(); i++) many += service("s" + std::to_string(i), "default");
  EXPECT_THAT(error_of([&] { plan_services(objects(many), {}, vips, kNamespaces); }),
              HasSubstr("service CIDR 10.96.0.0/28 is exhausted"));
}

}  // namespace
}  // namespace pilus::controller
