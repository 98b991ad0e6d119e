// Which pods back a service port: namespace, selector, readiness, target port.
#include <gtest/gtest.h>

#include "service/backend_selection.h"

namespace pilus::service {
namespace {

manifest::Service web_service() {
  manifest::Service s;
  s.name = "web";
  s.ns = "shop";
  s.selector = {{"app", "web"}};
  s.ports = {{"http", "TCP", 80, 8080, ""}, {"metrics", "TCP", 9090, 0, "metrics"}};
  return s;
}

PodCandidate pod(const std::string& ns, const std::string& name, std::map<std::string, std::string> labels,
                 uint32_t ip, bool ready = true) {
  PodCandidate p{ns, name, std::move(labels), endpoint::Ipv4{ip}, {}, ready};
  p.ports.push_back({"metrics", 9100, "TCP"});
  return p;
}

TEST(BackendSelection, ReadyPodsOfTheNamespaceMatchingTheSelector) {
  std::vector<PodCandidate> pods = {
      pod("shop", "web-b", {{"app", "web"}, {"tier", "x"}}, 0x0af40003),
      pod("shop", "web-a", {{"app", "web"}}, 0x0af40002),
      pod("other", "web-c", {{"app", "web"}}, 0x0af40004),           // other namespace
      pod("shop", "db", {{"app", "db"}}, 0x0af40005),                // other labels
      pod("shop", "web-down", {{"app", "web"}}, 0x0af40006, false),  // not ready
  };
  auto s = web_service();
  auto b = select_backends(s, s.ports[0], pods);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].pod, "shop/web-a");
  EXPECT_EQ(b[0].port, 8080);
  EXPECT_EQ(b[1].pod, "shop/web-b");
  EXPECT_EQ(b[1].ip.value, 0x0af40003u);
}

TEST(BackendSelection, NamedTargetPortUsesEachPodsContainerPort) {
  auto s = web_service();
  std::vector<PodCandidate> pods = {pod("shop", "web-a", {{"app", "web"}}, 0x0af40002)};
  PodCandidate unnamed = pod("shop", "web-z", {{"app", "web"}}, 0x0af40009);
  unnamed.ports.clear();  // no port named "metrics": not a backend of that port
  pods.push_back(unnamed);
  auto b = select_backends(s, s.ports[1], pods);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].port, 9100);
  EXPECT_EQ(select_backends(s, s.ports[0], pods).size(), 2u);
}

TEST(BackendSelection, NoSelectorNoBackends) {
  auto s = web_service();
  s.selector.clear();
  EXPECT_TRUE(select_backends(s, s.ports[0], {pod("shop", "web-a", {{"app", "web"}}, 0x0af40002)}).empty());
}

}  // namespace
}  // namespace pilus::service
