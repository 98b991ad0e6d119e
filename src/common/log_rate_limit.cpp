#include "common/log_rate_limit.h"

namespace pilus {

std::optional<uint64_t> LogRateLimit::allow(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (last_ && now - *last_ < interval_) {
    ++held_back_;
    return std::nullopt;
  }
  last_ = now;
  uint64_t held = held_back_;
  held_back_ = 0;
  return held;
}

}  // namespace pilus
