// Maglev lookup tables: every slot filled, load spread evenly, and removing a
// backend moves little more than that backend's own slots.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "service/maglev.h"

namespace pilus::service {
namespace {

std::vector<MaglevBackend> backends(int n) {
  std::vector<MaglevBackend> out;
  for (int i = 0; i < n; i++) out.push_back({"10.244.0." + std::to_string(10 + i) + ":8080/TCP", uint32_t(100 + i)});
  return out;
}

std::map<uint32_t, size_t> slots_per_backend(const std::vector<uint32_t>& table) {
  std::map<uint32_t, size_t> count;
  for (uint32_t id : table) count[id]++;
  return count;
}

TEST(Maglev, PrimeSizesOnly) {
  EXPECT_TRUE(is_prime(251));
  EXPECT_TRUE(is_prime(1021));
  EXPECT_TRUE(is_prime(16381));
  EXPECT_FALSE(is_prime(1024));
  EXPECT_THROW(maglev_table(backends(3), 1024), pilus::Error);
  EXPECT_THROW(maglev_table(backends(3), 2), pilus::Error);  // more backends than slots
  EXPECT_TRUE(maglev_table({}, 251).empty());
}

TEST(Maglev, OneBackendOwnsEverySlot) {
  auto table = maglev_table(backends(1), 251);
  ASSERT_EQ(table.size(), 251u);
  EXPECT_TRUE(std::all_of(table.begin(), table.end(), [](uint32_t id) { return id == 100; }));
}

// Evenness bound: in every turn each backend takes exactly one free slot, so
// with M slots and N backends each owns floor(M/N) or ceil(M/N) slots.
TEST(Maglev, EvenWithinOneSlot) {
  for (uint32_t size : {251u, 1021u, 16381u}) {
    for (int n : {2, 3, 5, 7, 10, 50}) {
      SCOPED_TRACE("M=" + std::to_string(size) + " N=" + std::to_string(n));
      auto count = slots_per_backend(maglev_table(backends(n), size));
      ASSERT_EQ(count.size(), size_t(n));
      for (const auto& [id, c] : count) {
        EXPECT_GE(c, size / n);
        EXPECT_LE(c, size / n + 1);
      }
    }
  }
}

TEST(Maglev, DependsOnlyOnTheSetOfBackends) {
  auto a = backends(5);
  auto b = a;
  std::reverse(b.begin(), b.end());
  EXPECT_EQ(maglev_table(a, 1021), maglev_table(b, 1021));
}

// Removing one of N backends must move about 1/N of the slots (its own),
// and only a little more: Maglev's paper reports a few percent extra.
TEST(Maglev, RemovingABackendMovesAboutItsShare) {
  const uint32_t size = 16381;
  for (int n : {3, 5, 10, 20}) {
    SCOPED_TRACE("N=" + std::to_string(n));
    auto all = backends(n);
    auto before = maglev_table(all, size);
    uint32_t removed = all[1].id;
    all.erase(all.begin() + 1);
    auto after = maglev_table(all, size);
    size_t moved = 0, moved_not_removed = 0;
    for (uint32_t s = 0; s < size; s++) {
      if (before[s] != after[s]) moved++;
      if (before[s] != after[s] && before[s] != removed) moved_not_removed++;
      EXPECT_NE(after[s], removed);
    }
    double share = double(moved) / size;
    double expected = 1.0 / n;
    RecordProperty("moved_share_N" + std::to_string(n), std::to_string(share));
    EXPECT_GE(share, expected * 0.9);
    EXPECT_LE(share, expected * 1.6) << "moved " << moved << " of " << size;
    EXPECT_LE(double(moved_not_removed) / size, 0.6 * expected);
  }
}

TEST(Maglev, AddingABackendTakesAboutItsShare) {
  const uint32_t size = 16381;
  auto all = backends(4);
  auto before = maglev_table(all, size);
  all.push_back({"10.244.0.99:8080/TCP", 999});
  auto after = maglev_table(all, size);
  size_t moved = 0;
  for (uint32_t s = 0; s < size; s++) moved += before[s] != after[s];
  EXPECT_LE(double(moved) / size, 0.2 * 1.6);
  EXPECT_GE(double(moved) / size, 0.2 * 0.9);
}

}  // namespace
}  // namespace pilus::service
