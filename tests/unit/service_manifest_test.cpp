// Unit tests for the Service kind: what is accepted, and bad input refused
// with a message naming the field.
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "manifest/object.h"

namespace pilus::manifest {
namespace {

using ::testing::HasSubstr;

const std::string kService = R"(apiVersion: v1
kind: Service
metadata:
  name: backend
  namespace: shop
spec:
  selector:
    app: backend
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: dns
    protocol: UDP
    port: 53
    targetPort: dns
)";

Service parse(const std::string& yaml) {
  auto docs = parse_documents(Source{"svc.yaml", yaml});
  return std::get<Service>(parse_object(docs.at(0)));
}

std::string error_of(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const pilus::Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::string with(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  if (at == std::string::npos) throw std::logic_error("test helper: \"" + from + "\" not found");
  return text.replace(at, from.size(), to);
}

TEST(ServiceManifest, ReadsPortsSelectorAndDefaults) {
  Service s = parse(kService);
  EXPECT_EQ(s.name, "backend");
  EXPECT_EQ(s.ns, "shop");
  EXPECT_EQ(s.cluster_ip, "");
  EXPECT_EQ(s.selector.at("app"), "backend");
  ASSERT_EQ(s.ports.size(), 2u);
  EXPECT_EQ(s.ports[0].protocol, "TCP");
  EXPECT_EQ(s.ports[0].port, 80);
  EXPECT_EQ(s.ports[0].target_port, 8080);
  EXPECT_EQ(s.ports[1].protocol, "UDP");
  EXPECT_EQ(s.ports[1].target_port, 0);
  EXPECT_EQ(s.ports[1].target_port_name, "dns");
  EXPECT_FALSE(s.client_ip_affinity);
}

TEST(ServiceManifest, TargetPortDefaultsToPort) {
  Service s = parse(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 8080}]
)");
  EXPECT_EQ(s.ports.at(0).target_port, 8080);
  EXPECT_EQ(s.ns, "default");
}

TEST(ServiceManifest, ClusterIPAndAffinity) {
  Service s = parse(with(kService, "spec:\n", R"(spec:
  type: ClusterIP
  clusterIP: 10.96.0.50
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
)"));
  EXPECT_EQ(s.cluster_ip, "10.96.0.50");
  EXPECT_TRUE(s.client_ip_affinity);
  EXPECT_EQ(s.affinity_timeout_s, 60u);
}

struct BadCase {
  const char* description;
  std::string from, to;
  const char* message;
};

TEST(ServiceManifest, BadInputNamesTheField) {
  const BadCase cases[] = {
      {"NodePort is not supported", "spec:\n", "spec:\n  type: NodePort\n", "spec.type: type NodePort is not supported"},
      {"headless", "spec:\n", "spec:\n  clusterIP: None\n", "headless services"},
      {"not an address", "spec:\n", "spec:\n  clusterIP: 10.96.0.300\n", "spec.clusterIP"},
      {"SCTP", "    protocol: UDP", "    protocol: SCTP", "SCTP is not supported"},
      {"port out of range", "port: 80", "port: 70000", "spec.ports[0].port"},
      {"targetPort 0", "targetPort: 8080", "targetPort: 0", "spec.ports[0].targetPort"},
      {"bad named port", "targetPort: dns", "targetPort: Not_A_Name", "spec.ports[1].targetPort"},
      {"name required with two ports", "- name: http\n    port: 80", "- port: 80", "spec.ports[0].name: is required"},
      {"duplicate port", "protocol: UDP\n    port: 53", "port: 80", "duplicate port 80/TCP"},
      {"unknown field", "spec:\n", "spec:\n  externalName: x\n", "unknown field"},
      {"bad affinity", "spec:\n", "spec:\n  sessionAffinity: Sticky\n", "spec.sessionAffinity"},
      {"RFC 1035 name", "name: backend", "name: 1backend", "metadata.name"},
      {"IPv6", "spec:\n", "spec:\n  ipFamilies: [IPv6]\n", "IPv6 services are not supported"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.description);
    EXPECT_THAT(error_of(with(kService, c.from, c.to)), HasSubstr(c.message));
  }
}

TEST(ServiceManifest, NoPortsIsAnError) {
  EXPECT_THAT(error_of(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: []
)"),
              HasSubstr("spec.ports: must have at least one port"));
}

}  // namespace
}  // namespace pilus::manifest
