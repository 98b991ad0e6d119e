#include "common/log_rate_limit.h"

#include <gtest/gtest.h>

namespace pilus {
namespace {

using namespace std::chrono_literals;

TEST(LogRateLimit, FirstMessagePassesThenOnePerInterval) {
  LogRateLimit limit(10s);
  auto t0 = LogRateLimit::Clock::time_point{} + 1h;
  EXPECT_EQ(limit.allow(t0), 0u);
  EXPECT_EQ(limit.allow(t0 + 1ms), std::nullopt);
  EXPECT_EQ(limit.allow(t0 + 9999ms), std::nullopt);
  // The next message says how many were held back, and the count starts over.
  EXPECT_EQ(limit.allow(t0 + 10s), 2u);
  EXPECT_EQ(limit.allow(t0 + 10s + 1ms), std::nullopt);
  EXPECT_EQ(limit.allow(t0 + 30s), 1u);
  EXPECT_EQ(limit.allow(t0 + 60s), 0u);
}

TEST(LogRateLimit, AFloodLogsAFewLines) {
  LogRateLimit limit(1s);
  auto t = LogRateLimit::Clock::time_point{} + 1h;
  int logged = 0;
  uint64_t reported = 0;
  // A million errors over 5 seconds: what spun the agent's log at 290k lines a second.
  for (int i = 0; i < 1'000'000; ++i) {
    if (auto held = limit.allow(t + std::chrono::microseconds(i * 5))) {
      ++logged;
      reported += *held + 1;
    }
  }
  EXPECT_EQ(logged, 5);
  // Every error up to the last message is accounted for (those after it wait for the next one).
  EXPECT_EQ(reported, 800'001u);
}

}  // namespace
}  // namespace pilus
