// The CLI's kubectl/cilium/hubble habits that need no agent: output shapes, list narrowing,
// selectors, policy trace ends, observe's flags.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/api_routes.h"
#include "cli/client_commands.h"
#include "cli/get_command.h"
#include "cli/observe_command.h"
#include "cli/output.h"
#include "manifest/document.h"
#include "unit/error_of.h"

namespace pilus::cli {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using pilus::testing::error_of;

// YAML output reads back (with the manifest reader) as the very JSON it came from.
TEST(CliOutput, YamlReadsBackAsTheSameJson) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "web"}, {"labels", {{"app", "web"}, {"version", "1.0"}, {"on", "true"}}}}},
              {"spec", {{"containers", json::array({{{"name", "c"}, {"args", {"-c", "echo: hi # not a comment", ""}}}})}}},
              {"status", {{"podIP", "10.244.0.5"}, {"identity", 256}, {"ready", true}, {"none", nullptr}, {"empty", json::object()},
                          {"list", json::array()}, {"port", "80"}, {"octal", "0755"}, {"null", "null"}}}};
  std::string yaml = to_yaml(pod);
  auto docs = manifest::parse_documents(manifest::Source{"out.yaml", yaml});
  ASSERT_EQ(docs.size(), 1u) << yaml;
  EXPECT_EQ(docs[0].body, pod) << yaml;
  EXPECT_THAT(yaml, HasSubstr("kind: Pod\n"));
  EXPECT_THAT(yaml, HasSubstr("port: \"80\""));
}

TEST(CliOutput, UnknownFormatsAreRefusedNamingTheKnownOnes) {
  EXPECT_EQ(error_of([] { print_structured("xml", json::object(), "wide, name"); }),
            "unknown output format \"xml\" (known: json, yaml, wide, name)");
  EXPECT_EQ(error_of([] { print_structured("nam", json::object(), "wide, name"); }),
            "unknown output format \"nam\" (known: json, yaml, wide, name)");
  EXPECT_FALSE(print_structured("wide", json::object(), "wide, name"));
  EXPECT_FALSE(print_structured("", json::object()));
}

TEST(CliGet, ListQueryCarriesNamespaceAndSelector) {
  GetOptions g;
  EXPECT_EQ(list_query(g, true), "namespace=default");
  EXPECT_EQ(list_query(g, false), "");
  g.all_namespaces = true;
  g.selector = "app in (a,b),!tier";
  EXPECT_EQ(list_query(g, true), "labelSelector=app%20in%20%28a%2Cb%29%2C%21tier");
}

api::v1::Pod pod_item(const std::string& ns, const std::string& name, api::v1::Labels labels) {
  api::v1::Pod pod;
  pod.metadata = {name, ns, std::move(labels), {}};
  return pod;
}

std::vector<std::string> names_of(const api::v1::PodList& list) {
  std::vector<std::string> out;
  for (const auto& i : list.items) out.push_back(i.metadata.name);
  return out;
}

std::vector<std::string> names_of(const api::v1::IdentityList& list) {
  std::vector<std::string> out;
  for (const auto& i : list.items) out.push_back(std::to_string(i.id));
  return out;
}

// kubectl's selector forms, as `get -l` sends them to the list routes.
TEST(CliGet, ListsNarrowByNamespaceAndLabelSelector) {
  api::v1::PodList list;
  list.items = {pod_item("default", "a", {{"app", "web"}, {"tier", "front"}}), pod_item("default", "b", {{"app", "db"}}),
                pod_item("shop", "c", {{"app", "web"}}), pod_item("default", "d", {}), pod_item("", "cluster-wide", {})};
  auto narrowed = [&](const std::string& ns, const std::string& sel) {
    return names_of(agent::narrow_list(list, ns, sel));
  };
  EXPECT_THAT(narrowed("", ""), ElementsAre("a", "b", "c", "d", "cluster-wide"));
  EXPECT_THAT(narrowed("default", ""), ElementsAre("a", "b", "d", "cluster-wide"));
  EXPECT_THAT(narrowed("default", "app=web"), ElementsAre("a"));
  EXPECT_THAT(narrowed("", "app==web"), ElementsAre("a", "c"));
  EXPECT_THAT(narrowed("default", "app!=web"), ElementsAre("b", "d", "cluster-wide"));
  EXPECT_THAT(narrowed("", "app in (db, web)"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(narrowed("", "app notin (web)"), ElementsAre("b", "d", "cluster-wide"));
  EXPECT_THAT(narrowed("", "!app"), ElementsAre("d", "cluster-wide"));
  EXPECT_THAT(narrowed("", "app"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(narrowed("", "app=web,tier"), ElementsAre("a"));
  EXPECT_THAT(error_of([&] { narrowed("", "app in web"); }), HasSubstr("app in web"));
}

TEST(CliGet, CiliumLabelStringsNarrowToo) {
  api::v1::IdentityList identities;
  identities.items = {{256, {"k8s:app=web", "k8s:io.kubernetes.pod.namespace=default"}, 1, false},
                      {2, {"reserved:world"}, 0, true}};
  EXPECT_THAT(names_of(agent::narrow_list(identities, "", "app=web")), ElementsAre("256"));
  EXPECT_THAT(names_of(agent::narrow_list(identities, "", "reserved:world")), ElementsAre("2"));
}

TEST(CliPolicyTrace, CiliumLabelsAndPodsBecomeTraceEnds) {
  TraceEnd labels = trace_end_from_cilium_labels({"k8s:app=frontend", "any:tier=web", "k8s:io.kubernetes.pod.namespace=prod"});
  EXPECT_THAT(labels.labels, ElementsAre("app=frontend", "tier=web"));
  EXPECT_EQ(labels.ns, "prod");
  EXPECT_TRUE(labels.target.empty());
  EXPECT_EQ(trace_end_from_cilium_labels({"app=x"}).labels, std::vector<std::string>{"app=x"});
  EXPECT_THAT(error_of([] { trace_end_from_cilium_labels({"reserved:world"}); }), HasSubstr("only k8s labels"));
  EXPECT_THAT(error_of([] { trace_end_from_cilium_labels({"k8s:io.kubernetes.pod.namespace=x"}); }),
              HasSubstr("no pod label"));
  EXPECT_EQ(trace_end_from_k8s_pod("prod:frontend").target, "prod/frontend");
  EXPECT_EQ(trace_end_from_k8s_pod("frontend").target, "default/frontend");
  EXPECT_THAT(error_of([] { trace_end_from_k8s_pod("prod:"); }), HasSubstr("is not NAMESPACE:POD"));
}

TEST(CliObserve, HubblesShortFlagsAndFormattingOptions) {
  ObserveOptions opts;
  ClientOptions client;
  parse_observe_args({"-n", "shop", "-t", "trace:to-endpoint", "-l", "app=web", "--first", "5", "--print-node-name",
                      "--time-format", "RFC3339Milli", "-o", "jsonpb", "--not", "--verdict", "DROPPED"},
                     opts, client);
  EXPECT_THAT(opts.filter_args, ElementsAre("--namespace", "shop", "--type", "trace:to-endpoint", "--label", "app=web",
                                            "--not", "--verdict", "DROPPED"));
  EXPECT_EQ(opts.first, 5);
  EXPECT_TRUE(opts.print_node_name);
  EXPECT_EQ(opts.time_format, "RFC3339Milli");
  EXPECT_EQ(client.output, "jsonpb");
  EXPECT_THAT(error_of([&] { parse_observe_args({"--time-format", "Kitchen"}, opts, client); }),
              HasSubstr("unknown time format 'Kitchen' (known: StampMilli, YearMonthDay"));
  EXPECT_THAT(error_of([&] { parse_observe_args({"--first", "-2"}, opts, client); }), HasSubstr("is not a count"));
}

}  // namespace
}  // namespace pilus::cli
