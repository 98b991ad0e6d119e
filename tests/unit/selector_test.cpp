// Unit tests for policy label selectors: matchLabels, matchExpressions, sources and display.
#include <gtest/gtest.h>

#include "identity/labels.h"
#include "common/error.h"
#include "policy/selector.h"

namespace pilus::policy {
namespace {

using identity::Label;
using identity::LabelSet;
using identity::parse_label_set;

const LabelSet kWeb = parse_label_set("k8s:app=web,k8s:tier=front,k8s:io.kubernetes.pod.namespace=default");
const LabelSet kHost = parse_label_set("reserved:host");

SelectorRequirement req(std::string source, std::string key, SelectorOperator op, std::vector<std::string> values = {}) {
  return SelectorRequirement{std::move(source), std::move(key), op, std::move(values)};
}

TEST(Selector, EmptySelectsEverything) {
  LabelSelector s;
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(s.matches(kWeb));
  EXPECT_TRUE(s.matches(kHost));
  EXPECT_TRUE(s.matches(LabelSet{}));
  EXPECT_EQ(s.to_string(), "{}");
}

TEST(Selector, MatchLabelsNeedEveryLabelWithItsSource) {
  LabelSelector s{{Label{"k8s", "app", "web"}}, {}};
  EXPECT_TRUE(s.matches(kWeb));
  s.match_labels.push_back(Label{"k8s", "tier", "back"});
  EXPECT_FALSE(s.matches(kWeb));

  // Same key and value from another source does not match unless the selector says "any".
  EXPECT_FALSE((LabelSelector{{Label{"reserved", "app", "web"}}, {}}).matches(kWeb));
  EXPECT_TRUE((LabelSelector{{Label{"any", "app", "web"}}, {}}).matches(kWeb));
  EXPECT_FALSE((LabelSelector{{Label{"any", "app", "db"}}, {}}).matches(kWeb));
}

TEST(Selector, ReservedLabelsHaveEmptyValues) {
  LabelSelector host{{Label{"reserved", "host", ""}}, {}};
  EXPECT_TRUE(host.matches(kHost));
  EXPECT_FALSE(host.matches(kWeb));
  EXPECT_EQ(host.to_string(), "reserved:host");
}

TEST(Selector, In) {
  LabelSelector s{{}, {req("k8s", "tier", SelectorOperator::kIn, {"back", "front"})}};
  EXPECT_TRUE(s.matches(kWeb));
  s.match_expressions[0].values = {"back"};
  EXPECT_FALSE(s.matches(kWeb));
  // A missing key never satisfies In.
  EXPECT_FALSE((LabelSelector{{}, {req("k8s", "zone", SelectorOperator::kIn, {"a"})}}).matches(kWeb));
}

TEST(Selector, NotInHoldsWhenTheKeyIsMissing) {
  LabelSelector s{{}, {req("any", "tier", SelectorOperator::kNotIn, {"back"})}};
  EXPECT_TRUE(s.matches(kWeb));
  s.match_expressions[0].values = {"front"};
  EXPECT_FALSE(s.matches(kWeb));
  EXPECT_TRUE((LabelSelector{{}, {req("k8s", "zone", SelectorOperator::kNotIn, {"a"})}}).matches(kWeb));
}

TEST(Selector, ExistsAndDoesNotExist) {
  EXPECT_TRUE((LabelSelector{{}, {req("k8s", "app", SelectorOperator::kExists)}}).matches(kWeb));
  EXPECT_FALSE((LabelSelector{{}, {req("k8s", "app", SelectorOperator::kExists)}}).matches(kHost));
  EXPECT_FALSE((LabelSelector{{}, {req("k8s", "app", SelectorOperator::kDoesNotExist)}}).matches(kWeb));
  EXPECT_TRUE((LabelSelector{{}, {req("k8s", "app", SelectorOperator::kDoesNotExist)}}).matches(kHost));
  // Source matters for the key too.
  EXPECT_FALSE((LabelSelector{{}, {req("reserved", "app", SelectorOperator::kExists)}}).matches(kWeb));
  EXPECT_TRUE((LabelSelector{{}, {req("any", "host", SelectorOperator::kExists)}}).matches(kHost));
}

TEST(Selector, AllTermsMustHold) {
  LabelSelector s{{Label{"k8s", "app", "web"}},
                  {req("k8s", "tier", SelectorOperator::kIn, {"front"}), req("k8s", "canary", SelectorOperator::kDoesNotExist)}};
  EXPECT_TRUE(s.matches(kWeb));
  LabelSet canary = kWeb;
  canary.insert(Label{"k8s", "canary", "true"});
  EXPECT_FALSE(s.matches(canary));
}

TEST(Selector, NamesKeyOnlyForSourcesThatSelectK8sLabels) {
  LabelSelector s{{Label{"any", "io.kubernetes.pod.namespace", "prod"}}, {}};
  EXPECT_TRUE(s.names_key("io.kubernetes.pod.namespace"));
  EXPECT_FALSE(s.names_key("app"));
  LabelSelector e{{}, {req("k8s", "io.cilium.k8s.namespace.labels.team", SelectorOperator::kExists)}};
  EXPECT_TRUE(e.names_key_prefix("io.cilium.k8s.namespace.labels."));
  EXPECT_FALSE(e.names_key("io.kubernetes.pod.namespace"));
  LabelSelector reserved{{Label{"reserved", "io.kubernetes.pod.namespace", ""}}, {}};
  EXPECT_FALSE(reserved.names_key("io.kubernetes.pod.namespace"));
  EXPECT_TRUE(reserved.uses_source("reserved"));
  EXPECT_FALSE(s.uses_source("reserved"));
}

TEST(Selector, ToStringShowsEveryTermWithItsSource) {
  LabelSelector s{{Label{"k8s", "app", "web"}, Label{"any", "empty", ""}},
                  {req("k8s", "tier", SelectorOperator::kIn, {"a", "b"}), req("any", "env", SelectorOperator::kNotIn, {"dev"}),
                   req("k8s", "x", SelectorOperator::kExists), req("k8s", "y", SelectorOperator::kDoesNotExist)}};
  EXPECT_EQ(s.to_string(), "k8s:app=web,any:empty=,k8s:tier in (a,b),any:env notin (dev),k8s:x,!k8s:y");
  EXPECT_EQ(to_string(SelectorOperator::kDoesNotExist), "DoesNotExist");
}

TEST(SelectorText, ParsesKubernetesSyntaxIntoTheSameSelector) {
  LabelSelector s = parse_selector_text("k8s:app=web, tier in (b, a,b), !reserved:world, env!=prod, team");
  EXPECT_EQ(s.to_string(), "k8s:app in (web),any:tier in (a,b),!reserved:world,any:env notin (prod),any:team");
  EXPECT_TRUE(s.matches(parse_label_set("k8s:app=web,k8s:tier=a,k8s:team=x")));
  EXPECT_FALSE(s.matches(parse_label_set("k8s:app=web,k8s:tier=a,k8s:team=x,k8s:env=prod")));
  EXPECT_FALSE(s.matches(parse_label_set("k8s:app=web,k8s:tier=a,k8s:team=x,reserved:world")));
  EXPECT_FALSE(s.matches(parse_label_set("k8s:app=web,k8s:tier=c,k8s:team=x")));
}

TEST(SelectorText, NamesTheSelectorOnSyntaxErrors) {
  for (const char* bad : {"", "app in a", "=x", "app in ()", "a b=c", "app,,tier"}) {
    try {
      parse_selector_text(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("invalid label selector"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace pilus::policy
