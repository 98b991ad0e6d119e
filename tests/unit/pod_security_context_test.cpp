// securityContext of pods and containers: what is read, what is refused, and the user
// and capabilities a container ends up with (Kubernetes precedence, containerd's order).
#include <sys/capability.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/capabilities.h"
#include "manifest/document.h"
#include "manifest/object.h"
#include "manifest/pod.h"
#include "unit/error_of.h"

namespace pilus::manifest {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using pilus::testing::error_of;

Pod parse(const std::string& pod_security, const std::string& container_security) {
  std::string yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n";
  if (!pod_security.empty()) yaml += "  securityContext: " + pod_security + "\n";
  yaml += "  containers:\n  - name: c\n    command: [sleep, \"1\"]\n";
  if (!container_security.empty()) yaml += "    securityContext: " + container_security + "\n";
  yaml += "  - name: d\n";
  auto docs = parse_documents(Source{"p.yaml", yaml});
  return std::get<Pod>(parse_object(docs.at(0)));
}

std::vector<int> with(std::vector<int> caps, std::initializer_list<int> more) {
  caps.insert(caps.end(), more);
  std::sort(caps.begin(), caps.end());
  return caps;
}

TEST(PodSecurityContext, DefaultsToRootWithTheDefaultCapabilities) {
  Pod pod = parse("", "");
  auto user = effective_user(pod, pod.containers[0]);
  EXPECT_EQ(user.uid, 0u);
  EXPECT_EQ(user.gid, 0u);
  auto caps = effective_capabilities(pod.containers[0]);
  EXPECT_EQ(caps, default_capabilities());
  for (int absent : {CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_SYS_PTRACE, CAP_MKNOD})
    EXPECT_THAT(caps, ::testing::Not(::testing::Contains(absent))) << capability_name(absent);
  EXPECT_THAT(caps, ::testing::Contains(CAP_NET_BIND_SERVICE)) << "servers bind port 80";
}

TEST(PodSecurityContext, ContainerUserWinsOverThePodsAndEachFieldFallsBackOnItsOwn) {
  Pod pod = parse("{runAsUser: 1000, runAsGroup: 1001, supplementalGroups: [5, 6]}", "{runAsUser: 2000}");
  auto own = effective_user(pod, pod.containers[0]);
  EXPECT_EQ(own.uid, 2000u);
  EXPECT_EQ(own.gid, 1001u);
  EXPECT_THAT(own.supplemental_groups, ElementsAre(5u, 6u));
  auto inherited = effective_user(pod, pod.containers[1]);
  EXPECT_EQ(inherited.uid, 1000u);
}

TEST(PodSecurityContext, CapabilitiesFollowContainerdsOrder) {
  EXPECT_EQ(effective_capabilities(parse("", "{capabilities: {add: [NET_ADMIN, CAP_NET_RAW]}}").containers[0]),
            with(default_capabilities(), {CAP_NET_ADMIN, CAP_NET_RAW}));
  EXPECT_TRUE(effective_capabilities(parse("", "{capabilities: {drop: [ALL]}}").containers[0]).empty());
  // drop ALL, then the adds: exactly what was added.
  EXPECT_THAT(effective_capabilities(parse("", "{capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}").containers[0]),
              ElementsAre(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(effective_capabilities(parse("", "{capabilities: {add: [ALL], drop: [SYS_ADMIN]}}").containers[0]).size(),
            all_capabilities().size() - 1);
  EXPECT_EQ(effective_capabilities(parse("", "{privileged: true, capabilities: {drop: [ALL]}}").containers[0]),
            all_capabilities());
}

TEST(PodSecurityContext, BadInputIsRefusedNamingTheField) {
  EXPECT_THAT(error_of([] { parse("", "{capabilities: {add: [NET_WIZARD]}}"); }),
              HasSubstr("spec.containers[0].securityContext.capabilities.add[0]: unknown capability \"NET_WIZARD\""));
  EXPECT_THAT(error_of([] { parse("", "{capabilities: {add: [\"12\"]}}"); }), HasSubstr("unknown capability \"12\""));
  EXPECT_THAT(error_of([] { parse("", "{runAsUser: -1}"); }), HasSubstr("spec.containers[0].securityContext.runAsUser"));
  EXPECT_THAT(error_of([] { parse("", "{seLinuxOptions: {}}"); }), HasSubstr("seLinuxOptions"));
  EXPECT_THAT(error_of([] { parse("{privileged: true}", ""); }), HasSubstr("spec.securityContext.privileged"));
  EXPECT_THAT(error_of([] { parse("", "{privileged: true, allowPrivilegeEscalation: false}"); }),
              HasSubstr("allowPrivilegeEscalation: false cannot be combined"));
  EXPECT_THAT(error_of([] { parse("{runAsNonRoot: true}", ""); }),
              HasSubstr("spec.containers[0].securityContext: runAsNonRoot is true but the container would run as root"));
  EXPECT_EQ(error_of([] { parse("{runAsNonRoot: true, runAsUser: 1000}", "{readOnlyRootFilesystem: true}"); }),
            "<no error>");
}

}  // namespace
}  // namespace pilus::manifest
