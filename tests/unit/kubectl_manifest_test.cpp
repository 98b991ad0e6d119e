// Manifests as `kubectl ... --dry-run=client -o yaml` writes them apply; fields pilus accepts
// without acting on them come back as warnings, never silently.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "manifest/object.h"
#include "manifest/service.h"
#include "manifest/validation.h"
#include "unit/error_of.h"

namespace pilus::manifest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using pilus::testing::error_of;

// kubectl create namespace shop --dry-run=client -o yaml
const std::string kKubectlNamespace = R"(apiVersion: v1
kind: Namespace
metadata:
  creationTimestamp: null
  name: shop
spec: {}
status: {}
)";

// kubectl run web --image=nginx --labels=app=web -n shop --dry-run=client -o yaml
const std::string kKubectlPod = R"(apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
  namespace: shop
spec:
  containers:
  - image: nginx
    name: web
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
)";

// kubectl create service clusterip web --tcp=80:80 -n shop --dry-run=client -o yaml
const std::string kKubectlService = R"(apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
  namespace: shop
spec:
  ports:
  - name: 80-80
    port: 80
    protocol: TCP
    targetPort: 80
  selector:
    app: web
  type: ClusterIP
status:
  loadBalancer: {}
)";

struct Parsed {
  std::vector<std::pair<Document, Object>> objects;
  std::vector<std::string> warnings;
};

Parsed parse(const std::string& yaml) {
  Parsed p;
  p.objects = parse_all({Source{"kubectl.yaml", yaml}}, &p.warnings);
  return p;
}

TEST(KubectlManifests, ANamespaceAppliesWithoutWarnings) {
  Parsed p = parse(kKubectlNamespace);
  ASSERT_EQ(p.objects.size(), 1u);
  EXPECT_EQ(std::get<NamespaceObject>(p.objects[0].second).name, "shop");
  EXPECT_THAT(p.warnings, IsEmpty());
}

TEST(KubectlManifests, APodAppliesAndWarnsAboutWhatPilusDoesNotDo) {
  Parsed p = parse(kKubectlPod);
  ASSERT_EQ(p.objects.size(), 1u);
  const Pod& pod = std::get<Pod>(p.objects[0].second);
  EXPECT_EQ(pod.containers.at(0).image, "nginx");
  ASSERT_EQ(p.warnings.size(), 3u) << ::testing::PrintToString(p.warnings);
  EXPECT_THAT(p.warnings[0], HasSubstr("spec.containers[0].image: \"nginx\" is not pulled: the command runs on the node's filesystem"));
  EXPECT_THAT(p.warnings[0], HasSubstr("kubectl.yaml"));
  EXPECT_THAT(p.warnings[1], HasSubstr("spec.restartPolicy: Always: pilus runs the command once"));
  EXPECT_THAT(p.warnings[2], HasSubstr("spec.dnsPolicy: ignored"));
}

TEST(KubectlManifests, AServiceWithKubectlsPortNameApplies) {
  Parsed p = parse(kKubectlService);
  ASSERT_EQ(p.objects.size(), 1u);
  const Service& svc = std::get<Service>(p.objects[0].second);
  EXPECT_EQ(svc.ports.at(0).name, "80-80");
  EXPECT_THAT(p.warnings, IsEmpty());
}

TEST(KubectlManifests, ServerSetFieldsWithValuesAreWarnedAbout) {
  std::string ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n"
                   "spec:\n  finalizers: [kubernetes]\nstatus:\n  phase: Active\n";
  Parsed p = parse(ns);
  EXPECT_THAT(p.warnings,
              ElementsAre(HasSubstr("status: ignored: status is reported by pilus"),
                          HasSubstr("metadata.creationTimestamp: ignored"), HasSubstr("spec.finalizers: ignored")));
}

TEST(KubectlManifests, StatusMustStillBeAMap) {
  EXPECT_THAT(error_of([] { parse("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\nstatus: 3\n"); }),
              HasSubstr("status: must be a map, got 3"));
  EXPECT_THAT(error_of([] { parse("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\nspec:\n  color: red\n"); }),
              HasSubstr("unknown field \"spec.color\""));
}

TEST(KubectlManifests, WarningsOutsideParseAllAreDropped) {
  std::vector<Document> docs = parse_documents(Source{"store", kKubectlPod});
  EXPECT_NO_THROW(parse_object(docs.at(0)));  // no scope open: nothing to report to, nothing thrown
}

TEST(KubectlManifests, AnAppProtocolAndResourceLimitsAreWarnedAbout) {
  std::string svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n"
                    "    appProtocol: http\n";
  EXPECT_THAT(parse(svc).warnings, ElementsAre(HasSubstr("spec.ports[0].appProtocol: ignored")));
  std::string affinity = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n"
                         "  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 60\n";
  EXPECT_THAT(parse(affinity).warnings, ElementsAre(HasSubstr("spec.sessionAffinityConfig: ignored: it applies only with")));
  EXPECT_THAT(parse(affinity + "  sessionAffinity: ClientIP\n").warnings, IsEmpty());
  std::string pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n"
                    "    resources:\n      limits:\n        cpu: 500m\n  restartPolicy: Never\n";
  EXPECT_THAT(parse(pod).warnings, ElementsAre(HasSubstr("spec.containers[0].resources: ignored")));
}

// Kubernetes: a Service port's name is a DNS-1123 label; a container port's name (and a
// targetPort given by name) an IANA service name.
TEST(KubectlManifests, PortNamesFollowKubernetesRules) {
  auto service_port = [](const std::string& name) {
    return error_of([&] {
      parse("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n  - port: 80\n    name: \"" + name +
            "\"\n");
    });
  };
  for (const char* ok : {"80-80", "http", "a", "web-8080", "x123456789012345678901234567890"})
    EXPECT_EQ(service_port(ok), "<no error>") << ok;
  for (const char* bad : {"HTTP", "-http", "http-", "http_alt", ""})
    EXPECT_THAT(service_port(bad), HasSubstr("invalid DNS-1123 label")) << bad;

  auto container_port = [](const std::string& name) {
    return error_of([&] {
      parse("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  restartPolicy: Never\n  containers:\n"
            "  - name: c\n    ports:\n    - containerPort: 80\n      name: \"" + name + "\"\n");
    });
  };
  for (const char* ok : {"http", "web-8080", "h2c", "a1"}) EXPECT_EQ(container_port(ok), "<no error>") << ok;
  EXPECT_THAT(container_port("80-80"), HasSubstr("must contain at least one letter"));
  EXPECT_THAT(container_port("web--alt"), HasSubstr("must not contain \"--\""));
  EXPECT_THAT(container_port("abcdefghijklmnop"), HasSubstr("at most 15 characters"));
  EXPECT_THAT(container_port("Http"), HasSubstr("invalid port name"));
}

}  // namespace
}  // namespace pilus::manifest
