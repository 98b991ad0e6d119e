// Lets a repeating warning through at most once per interval, and says how many were held back,
// so an error that repeats thousands of times a second (EMFILE on accept) cannot flood the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace pilus {

class LogRateLimit {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogRateLimit(std::chrono::milliseconds interval = std::chrono::seconds(10)) : interval_(interval) {}

  // nullopt: stay quiet (counted). Otherwise log now; the value is how many were held back since
  // the last message. Thread-safe.
  std::optional<uint64_t> allow(Clock::time_point now = Clock::now());

 private:
  std::mutex mu_;
  std::chrono::milliseconds interval_;
  std::optional<Clock::time_point> last_;
  uint64_t held_back_ = 0;
};

}  // namespace pilus
