// spec.runtimeClassName: pilus-cni marks a Pod whose container a runtime runs (pilus-cni).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "manifest/document.h"
#include "manifest/object.h"
#include "unit/error_of.h"

namespace pilus::manifest {
namespace {

Pod parse_pod_yaml(const std::string& runtime_class) {
  std::string yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n" +
                     (runtime_class.empty() ? std::string() : "  runtimeClassName: " + runtime_class + "\n") +
                     "  containers:\n  - name: web\n    image: busybox\n";
  std::vector<Document> docs = parse_documents(Source{"pod.yaml", yaml});
  return std::get<Pod>(parse_object(docs.at(0)));
}

TEST(RuntimeClass, PilusCniMarksARuntimesPodAndOtherClassesAreRefused) {
  EXPECT_EQ(parse_pod_yaml("pilus-cni").runtime_class, kRuntimeClassCni);
  EXPECT_EQ(parse_pod_yaml("").runtime_class, "");
  EXPECT_THAT(pilus::testing::error_of([] { parse_pod_yaml("gvisor"); }),
              ::testing::AllOf(::testing::HasSubstr("spec.runtimeClassName"), ::testing::HasSubstr("pilus-cni")));
}

}  // namespace
}  // namespace pilus::manifest
