// Labels and IdentityAllocator: Cilium's label forms, reserved ids, refcounts, persistence, ranges.
#include "identity/identity_allocator.h"
#include "store/state_dir.h"
#include "identity/labels.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "unit/error_of.h"

namespace pilus::identity {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using pilus::testing::error_of;

LabelSet labels(std::string_view text) { return parse_label_set(text); }

// ---- labels ----

struct ParseCase {
  const char* text;
  Label expected;
  const char* printed;
};

TEST(Labels, ParseAndPrint) {
  const ParseCase cases[] = {
      {"k8s:app=frontend", {"k8s", "app", "frontend"}, "k8s:app=frontend"},
      {"app=web", {"k8s", "app", "web"}, "k8s:app=web"},
      {"reserved:host", {"reserved", "host", ""}, "reserved:host"},
      {"cidr:10.0.0.0/8", {"cidr", "10.0.0.0/8", ""}, "cidr:10.0.0.0/8"},
      {"any:app=web", {"any", "app", "web"}, "any:app=web"},
      // A ':' after the '=' belongs to the value, not to a source.
      {"app=a:b", {"k8s", "app", "a:b"}, "k8s:app=a:b"},
      {"k8s:io.kubernetes.pod.namespace=default",
       {"k8s", "io.kubernetes.pod.namespace", "default"},
       "k8s:io.kubernetes.pod.namespace=default"},
      {"k8s:app.kubernetes.io/name=db", {"k8s", "app.kubernetes.io/name", "db"},
       "k8s:app.kubernetes.io/name=db"},
      {"k8s:x=a=b", {"k8s", "x", "a=b"}, "k8s:x=a=b"},
      {"k8s:flag=", {"k8s", "flag", ""}, "k8s:flag"},
  };
  for (const auto& c : cases) {
    Label parsed = parse_label(c.text);
    EXPECT_EQ(parsed, c.expected) << c.text;
    EXPECT_EQ(parsed.to_string(), c.printed) << c.text;
  }
  EXPECT_EQ(parse_label("app=web", kSourceAny), (Label{"any", "app", "web"}));
}

TEST(Labels, ParseRejectsEmptyKeyOrSource) {
  EXPECT_THAT(error_of([] { parse_label(""); }), HasSubstr("empty key"));
  EXPECT_THAT(error_of([] { parse_label("k8s:=web"); }), HasSubstr("empty key"));
  EXPECT_THAT(error_of([] { parse_label(":app=web"); }), HasSubstr("empty source"));
  EXPECT_THAT(error_of([] { parse_label_set("a=b,,c=d"); }), HasSubstr("empty label"));
}

TEST(Labels, SetStringIsCanonical) {
  LabelSet a = labels("k8s:zone=b,k8s:app=web,reserved:host");
  LabelSet b;
  b.insert({"reserved", "host", ""});
  b.insert({"k8s", "app", "web"});
  b.insert({"k8s", "zone", "b"});
  b.insert({"k8s", "app", "web"});  // a set: duplicates collapse
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a.to_string(), "k8s:app=web,k8s:zone=b,reserved:host");
  EXPECT_EQ(b.to_string(), a.to_string());
  EXPECT_EQ(parse_label_set(a.to_string()), a);
  EXPECT_EQ(labels(" app=web , zone=b ").to_string(), "k8s:app=web,k8s:zone=b");
  EXPECT_TRUE(labels("").empty());
}

TEST(Labels, Json) {
  LabelSet set = labels("k8s:app=web,reserved:host");
  nlohmann::json j = set;
  EXPECT_EQ(j, nlohmann::json::parse(R"(["k8s:app=web", "reserved:host"])"));
  EXPECT_EQ(j.get<LabelSet>(), set);
  EXPECT_EQ(nlohmann::json(LabelSet{}), nlohmann::json::array());
  EXPECT_THAT(error_of([] { nlohmann::json("k8s:a=b").get<LabelSet>(); }), HasSubstr("array"));
  EXPECT_THAT(error_of([] { nlohmann::json::parse("[1]").get<LabelSet>(); }), HasSubstr("string"));
}

TEST(Labels, PodLabelsAsCiliumDerivesThem) {
  LabelSet set = pod_labels({{"app", "frontend"}, {"tier", "web"}}, "shop", {{"team", "blue"}});
  EXPECT_EQ(set.to_string(),
            "k8s:app=frontend,"
            "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop,"
            "k8s:io.cilium.k8s.namespace.labels.team=blue,"
            "k8s:io.kubernetes.pod.namespace=shop,"
            "k8s:tier=web");
  // Same labels in another namespace are another identity.
  EXPECT_NE(pod_labels({{"app", "frontend"}}, "a", {}), pod_labels({{"app", "frontend"}}, "b", {}));
  EXPECT_THAT(error_of([] { pod_labels({{"a=b", "c"}}, "default", {}); }), HasSubstr("a=b"));
  EXPECT_THAT(error_of([] { pod_labels({{"a", "b,c"}}, "default", {}); }), HasSubstr("','"));
  EXPECT_THAT(error_of([] { pod_labels({}, "", {}); }), HasSubstr("namespace"));
}

TEST(Labels, AnySourceMatchesEverySource) {
  Label k8s_app{"k8s", "app", "web"};
  EXPECT_TRUE(matches(parse_label("k8s:app=web"), k8s_app));
  EXPECT_TRUE(matches(parse_label("any:app=web"), k8s_app));
  EXPECT_TRUE(matches(parse_label("any:app=web"), Label{"container", "app", "web"}));
  EXPECT_FALSE(matches(parse_label("container:app=web"), k8s_app));
  EXPECT_FALSE(matches(parse_label("any:app=db"), k8s_app));
  EXPECT_FALSE(matches(parse_label("any:name=web"), k8s_app));
  // "any" only has that meaning on the selector side.
  EXPECT_FALSE(matches(k8s_app, Label{"any", "app", "web"}));

  LabelSet pod = pod_labels({{"app", "web"}}, "default", {});
  EXPECT_TRUE(pod.has_match(parse_label("any:io.kubernetes.pod.namespace=default")));
  EXPECT_TRUE(pod.has_match(parse_label("k8s:app=web")));
  EXPECT_FALSE(pod.has_match(parse_label("reserved:app=web")));
}

// ---- allocator ----

class IdentityAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pilus-identity-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store_ = store::open_state_store(dir_);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

const LabelSet kFrontend = pod_labels({{"app", "frontend"}}, "default", {});
const LabelSet kBackend = pod_labels({{"app", "backend"}}, "default", {});
const LabelSet kDb = pod_labels({{"app", "db"}}, "default", {});

TEST_F(IdentityAllocatorTest, ReservedIdentitiesAreFixed) {
  IdentityAllocator ids(*store_);
  const std::pair<uint32_t, const char*> reserved[] = {
      {1, "reserved:host"},   {2, "reserved:world"},       {3, "reserved:unmanaged"},
      {4, "reserved:health"}, {5, "reserved:init"},        {6, "reserved:remote-node"},
      {7, "reserved:kube-apiserver"}, {8, "reserved:ingress"},
  };
  for (const auto& [id, text] : reserved) {
    EXPECT_EQ(ids.lookup(labels(text)), id) << text;
    ASSERT_NE(ids.labels_of(id), nullptr);
    EXPECT_EQ(ids.labels_of(id)->to_string(), text);
    // Acquiring and releasing them never changes anything.
    EXPECT_EQ(ids.acquire(labels(text)), id);
    ids.release(id);
    ids.release(id);
    EXPECT_EQ(ids.lookup(labels(text)), id);
  }
  auto list = ids.list();
  ASSERT_EQ(list.size(), 8u);
  EXPECT_TRUE(list[0].reserved);
  EXPECT_EQ(ids.pod_identity_count(), 0u);
  EXPECT_TRUE(store_->list(IdentityAllocator::kCollection).empty());
}

TEST_F(IdentityAllocatorTest, PodIdentitiesStartAt256AndFollowLabels) {
  IdentityAllocator ids(*store_);
  EXPECT_EQ(ids.acquire(kFrontend), 256u);
  EXPECT_EQ(ids.acquire(kBackend), 257u);
  EXPECT_EQ(ids.acquire(kFrontend), 256u);
  EXPECT_EQ(ids.lookup(kBackend), 257u);
  EXPECT_EQ(ids.lookup(kDb), std::nullopt);
  EXPECT_EQ(*ids.labels_of(257), kBackend);
  EXPECT_EQ(ids.labels_of(300), nullptr);
  EXPECT_EQ(ids.pod_identity_count(), 2u);

  auto list = ids.list();
  ASSERT_EQ(list.size(), 10u);
  EXPECT_EQ(list[8].id, 256u);
  EXPECT_EQ(list[8].refcount, 2u);
  EXPECT_FALSE(list[8].reserved);
  EXPECT_EQ(nlohmann::json(list[9]),
            nlohmann::json({{"id", 257}, {"labels", kBackend}, {"refcount", 1}, {"reserved", false}}));
}

TEST_F(IdentityAllocatorTest, FreedAtZeroAndLowestNumberReused) {
  IdentityAllocator ids(*store_);
  ids.acquire(kFrontend);                 // 256
  uint32_t backend = ids.acquire(kBackend);  // 257
  ids.acquire(kBackend);
  ids.acquire(kDb);                       // 258

  ids.release(backend);
  EXPECT_EQ(ids.lookup(kBackend), 257u) << "one user left";
  ids.release(backend);
  EXPECT_EQ(ids.lookup(kBackend), std::nullopt);
  EXPECT_EQ(ids.labels_of(257), nullptr);
  EXPECT_EQ(store_->get(IdentityAllocator::kCollection, "257"), std::nullopt);

  ids.release(256);
  LabelSet other = pod_labels({{"app", "other"}}, "default", {});
  EXPECT_EQ(ids.acquire(other), 256u);
  EXPECT_EQ(ids.acquire(kBackend), 257u);
  EXPECT_EQ(ids.acquire(kFrontend), 259u);

  EXPECT_THAT(error_of([&] { ids.release(4242); }), HasSubstr("not allocated"));
}

TEST_F(IdentityAllocatorTest, NumbersSurviveARestart) {
  {
    IdentityAllocator ids(*store_);
    ids.acquire(kFrontend);  // 256
    ids.acquire(kBackend);   // 257
    ids.acquire(kDb);        // 258
    ids.release(257);
    EXPECT_EQ(ids.allocate_cidr("10.0.0.0/8"), static_cast<uint32_t>(IDENTITY_FIRST_LOCAL));
  }
  auto reopened_store = store::open_state_store(dir_);
  store::Store& reopened = *reopened_store;
  IdentityAllocator ids(reopened);
  EXPECT_EQ(ids.lookup(kFrontend), 256u);
  EXPECT_EQ(ids.lookup(kDb), 258u);
  EXPECT_EQ(ids.lookup(kBackend), std::nullopt);
  EXPECT_EQ(ids.lookup(labels("cidr:10.0.0.0/8")), static_cast<uint32_t>(IDENTITY_FIRST_LOCAL));
  ASSERT_FALSE(ids.list().empty());
  for (const auto& info : ids.list()) EXPECT_EQ(info.refcount, 0u) << info.id;

  // The agent re-acquires what its endpoints use; the rest goes.
  EXPECT_EQ(ids.acquire(kDb), 258u);
  ids.release_unused();
  EXPECT_EQ(ids.lookup(kFrontend), std::nullopt);
  EXPECT_EQ(ids.lookup(labels("cidr:10.0.0.0/8")), std::nullopt);
  EXPECT_EQ(ids.lookup(kDb), 258u);
  EXPECT_EQ(ids.list().size(), 9u);

  auto stored = reopened.list(IdentityAllocator::kCollection);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].first, "258");
  EXPECT_EQ(stored[0].second, nlohmann::json({{"labels", kDb}}));

  // Freed numbers are reused lowest first after a restart too.
  EXPECT_EQ(ids.acquire(kBackend), 256u);
}

TEST_F(IdentityAllocatorTest, CorruptStoredIdentitiesAreReported) {
  store_->put(IdentityAllocator::kCollection, "256", {{"labels", {"k8s:app=a"}}});
  store_->put(IdentityAllocator::kCollection, "300", {{"labels", {"k8s:app=a"}}});
  EXPECT_THAT(error_of([&] { IdentityAllocator ids(*store_); }),
              HasSubstr("already have identity 256"));

  store_->erase(IdentityAllocator::kCollection, "300");
  store_->put(IdentityAllocator::kCollection, "0300", {{"labels", {"k8s:app=b"}}});
  EXPECT_THAT(error_of([&] { IdentityAllocator ids(*store_); }), HasSubstr("0300"));

  store_->erase(IdentityAllocator::kCollection, "0300");
  store_->put(IdentityAllocator::kCollection, "5", {{"labels", {"k8s:app=b"}}});
  EXPECT_THAT(error_of([&] { IdentityAllocator ids(*store_); }), HasSubstr("outside"));

  store_->erase(IdentityAllocator::kCollection, "5");
  store_->put(IdentityAllocator::kCollection, "301", {{"nolabels", 1}});
  EXPECT_THAT(error_of([&] { IdentityAllocator ids(*store_); }), HasSubstr("identities/301"));
}

TEST_F(IdentityAllocatorTest, CidrIdentitiesLiveInTheLocalRange) {
  IdentityAllocator ids(*store_);
  const uint32_t first = IDENTITY_FIRST_LOCAL;
  EXPECT_EQ(ids.allocate_cidr("10.0.0.0/8"), first);
  EXPECT_EQ(ids.allocate_cidr("192.168.1.0/24"), first + 1);
  // Same prefix however it is written: host bits cleared, a bare address is a /32.
  EXPECT_EQ(ids.allocate_cidr("10.1.2.3/8"), first);
  EXPECT_EQ(ids.allocate_cidr("1.1.1.1"), first + 2);
  EXPECT_EQ(ids.lookup(labels("cidr:1.1.1.1/32")), first + 2);
  EXPECT_EQ(ids.labels_of(first)->to_string(), "cidr:10.0.0.0/8");
  EXPECT_EQ(ids.pod_identity_count(), 0u);
  EXPECT_TRUE(IdentityAllocator::is_local(first));

  ids.release(first);
  EXPECT_EQ(ids.lookup(labels("cidr:10.0.0.0/8")), first) << "still acquired twice";
  ids.release(first);
  EXPECT_EQ(ids.lookup(labels("cidr:10.0.0.0/8")), std::nullopt);
  EXPECT_EQ(ids.allocate_cidr("172.16.0.0/12"), first);
  // Pod identities are unaffected by the local range.
  EXPECT_EQ(ids.acquire(kFrontend), 256u);

  EXPECT_THAT(error_of([&] { ids.allocate_cidr("10.0.0/8"); }), HasSubstr("10.0.0/8"));
}

TEST_F(IdentityAllocatorTest, CidrIdentitiesArePersistedAsOneDocumentPerBatch) {
  const uint32_t first = IDENTITY_FIRST_LOCAL;
  {
    IdentityAllocator ids(*store_);
    EXPECT_EQ(ids.allocate_cidrs({"10.0.0.0/8", "192.168.0.0/16", "10.0.0.0/8"}),
              (std::vector<uint32_t>{first, first + 1, first}));
    EXPECT_EQ(store_->list(IdentityAllocator::kCollection).size(), 0u) << "no file per CIDR identity";
    auto docs = store_->list(IdentityAllocator::kCidrCollection);
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].second["identities"].size(), 2u) << docs[0].second.dump();
    // A bad prefix anywhere in a batch allocates nothing of it.
    EXPECT_THAT(error_of([&] { ids.allocate_cidrs({"172.16.0.0/12", "300.0.0.0/8"}); }), HasSubstr("300.0.0.0"));
    EXPECT_EQ(ids.lookup(labels("cidr:172.16.0.0/12")), std::nullopt);
    ids.release_all({first + 1});
  }
  auto reopened_store = store::open_state_store(dir_);
  store::Store& reopened = *reopened_store;
  IdentityAllocator ids(reopened);
  EXPECT_EQ(ids.lookup(labels("cidr:10.0.0.0/8")), first);
  EXPECT_EQ(ids.lookup(labels("cidr:192.168.0.0/16")), std::nullopt) << "released before the restart";
}

TEST_F(IdentityAllocatorTest, CidrIdentitiesStoredOneFileEachByEarlierAgentsAreMovedIntoTheDocument) {
  const uint32_t first = IDENTITY_FIRST_LOCAL;
  store_->put(IdentityAllocator::kCollection, std::to_string(first + 5), {{"labels", {"cidr:10.0.0.0/8"}}});
  store_->put(IdentityAllocator::kCollection, "256", {{"labels", {"k8s:app=a"}}});
  {
    IdentityAllocator ids(*store_);
    EXPECT_EQ(ids.lookup(labels("cidr:10.0.0.0/8")), first + 5);
  }
  auto per_id = store_->list(IdentityAllocator::kCollection);
  ASSERT_EQ(per_id.size(), 1u);
  EXPECT_EQ(per_id[0].first, "256");
  IdentityAllocator again(*store_);
  EXPECT_EQ(again.lookup(labels("cidr:10.0.0.0/8")), first + 5);
}

TEST_F(IdentityAllocatorTest, RejectsLabelSetsOutsideItsRanges) {
  IdentityAllocator ids(*store_);
  EXPECT_THAT(error_of([&] { ids.acquire(LabelSet{}); }), HasSubstr("empty label set"));
  EXPECT_THAT(error_of([&] { ids.acquire(labels("reserved:host,k8s:app=x")); }),
              HasSubstr("reserved"));
  EXPECT_THAT(error_of([&] { ids.acquire(labels("reserved:bogus")); }), HasSubstr("reserved"));
  EXPECT_THAT(error_of([&] { ids.acquire(labels("cidr:10.0.0.0/8,k8s:app=x")); }),
              HasSubstr("mixed"));
  EXPECT_EQ(ids.pod_identity_count(), 0u);
}

TEST_F(IdentityAllocatorTest, ExhaustionIsAnError) {
  IdentityAllocator ids(*store_, /*last_pod_identity=*/258);
  ids.acquire(labels("app=a"));
  ids.acquire(labels("app=b"));
  ids.acquire(labels("app=c"));
  EXPECT_THAT(error_of([&] { ids.acquire(labels("app=d")); }),
              HasSubstr("pod identities are exhausted: all 3 numbers from 256 to 258 are in use"));
  EXPECT_EQ(ids.lookup(labels("app=d")), std::nullopt);
  ids.release(257);
  EXPECT_EQ(ids.acquire(labels("app=d")), 257u);
  EXPECT_THAT(error_of([&] { IdentityAllocator bad(*store_, 100); }), HasSubstr("100"));
}

}  // namespace
}  // namespace pilus::identity
