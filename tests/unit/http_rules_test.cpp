// L7 rule matching as CiliumNetworkPolicy defines it: full-match regexes, empty = any, rules OR.
#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "common/error.h"
#include "proxy/http_rules.h"

namespace pilus::proxy {
namespace {

HttpRequestView request(std::string_view method, std::string_view path, std::string_view host = "backend",
                        std::vector<std::pair<std::string_view, std::string_view>> headers = {}) {
  return {method, path, host, std::move(headers)};
}

policy::HttpRule rule(std::string method, std::string path, std::string host = "", std::vector<std::string> headers = {}) {
  return {std::move(method), std::move(path), std::move(host), std::move(headers)};
}

struct Case {
  const char* what;
  policy::HttpRule rule;
  HttpRequestView req;
  bool allowed;
};

TEST(HttpRules, TableOfSingleRules) {
  const Case cases[] = {
      {"seed rule allows GET /api/users", rule("GET", "/api/.*"), request("GET", "/api/users"), true},
      {"seed rule denies POST", rule("GET", "/api/.*"), request("POST", "/api/users"), false},
      {"seed rule denies /admin", rule("GET", "/api/.*"), request("GET", "/admin"), false},
      {"path is matched whole, not searched", rule("GET", "/api/.*"), request("GET", "/x/api/users"), false},
      {"method is matched whole", rule("GET", ""), request("GETX", "/"), false},
      {"method regex alternation", rule("GET|HEAD", ""), request("HEAD", "/"), true},
      {"empty method and path match anything", rule("", ""), request("DELETE", "/anything"), true},
      {"empty path with a method", rule("GET", ""), request("GET", "/admin"), true},
      {"query string is part of the path", rule("GET", "/api/users"), request("GET", "/api/users?id=1"), false},
      {"host full match", rule("", "", "api\\.example\\.com"), request("GET", "/", "api.example.com"), true},
      {"host mismatch", rule("", "", "api\\.example\\.com"), request("GET", "/", "evil.example.com"), false},
      {"header presence", rule("", "", "", {"X-Token"}), request("GET", "/", "h", {{"x-token", "abc"}}), true},
      {"header presence missing", rule("", "", "", {"X-Token"}), request("GET", "/", "h", {{"X-Other", "1"}}), false},
      {"header exact value", rule("", "", "", {"X-Token: abc"}), request("GET", "/", "h", {{"X-Token", "abc"}}), true},
      {"header wrong value", rule("", "", "", {"X-Token: abc"}), request("GET", "/", "h", {{"X-Token", "abd"}}), false},
      {"every header must be present", rule("", "", "", {"A", "B"}), request("GET", "/", "h", {{"A", "1"}}), false},
      {"a repeated header: any value", rule("", "", "", {"A: 2"}), request("GET", "/", "h", {{"A", "1"}, {"A", "2"}}), true},
  };
  for (const Case& c : cases) {
    HttpRuleMatcher m(c.rule);
    EXPECT_EQ(m.matches(c.req), c.allowed) << c.what;
  }
}

TEST(HttpRules, SeveralRulesOr) {
  HttpRuleSet set({rule("GET", "/api/.*"), rule("POST", "/api/login")});
  EXPECT_TRUE(set.matches(request("GET", "/api/a")));
  EXPECT_TRUE(set.matches(request("POST", "/api/login")));
  EXPECT_FALSE(set.matches(request("POST", "/api/a")));
  EXPECT_FALSE(HttpRuleSet().matches(request("GET", "/")));
}

TEST(HttpRules, InvalidExpressionIsRefusedNamingTheField) {
  try {
    HttpRuleMatcher m(rule("GET", "/api/(["));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("path"), std::string::npos) << e.what();
  }
}

// The CPU time this thread spent matching `path` (the best of a few tries: the least disturbed).
std::chrono::nanoseconds match_cpu_time(const HttpRuleMatcher& m, const std::string& path) {
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  };
  auto best = std::chrono::nanoseconds::max();
  for (int i = 0; i < 5; i++) {
    auto start = cpu_now();
    EXPECT_FALSE(m.matches(request("GET", path)));
    best = std::min(best, std::chrono::duration_cast<std::chrono::nanoseconds>(cpu_now() - start));
  }
  return best;
}

TEST(HttpRules, PathologicalExpressionStaysLinear) {
  // (a+)+b backtracks exponentially in std::regex; RE2 is linear in the input. The bound is a
  // ratio within this run, in thread CPU time (a loaded machine slows both sizes alike): ten
  // times the input may cost at most 30 times the time. Linear is ~10; quadratic would be ~100.
  HttpRuleMatcher m(rule("", "(a+)+b"));
  auto small = match_cpu_time(m, std::string(40000, 'a'));
  auto large = match_cpu_time(m, std::string(400000, 'a'));
  ASSERT_GT(small.count(), 0);
  double ratio = double(large.count()) / double(small.count());
  RecordProperty("cpu_time_ratio_10x_input", std::to_string(ratio));
  EXPECT_LT(ratio, 30.0) << "40k chars: " << small.count() << " ns, 400k chars: " << large.count() << " ns";
}

}  // namespace
}  // namespace pilus::proxy
