// HTTP request matching for L7 policy, with CiliumNetworkPolicy's semantics:
// method and path are regular expressions matched against the whole value,
// host too; each header is "Name" (must be present) or "Name: value" (an
// exact value); an empty field matches anything; several rules OR.
// RE2 keeps matching linear in the input, whatever the policy author wrote.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "policy/policy_rule.h"

namespace pilus::proxy {

// What the matcher looks at in one request.
struct HttpRequestView {
  std::string_view method;
  std::string_view path;  // the request target as sent (origin-form: "/api/users?x=1")
  std::string_view host;  // the Host header, without the port
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // name, value
};

// One compiled rule. Throws pilus::Error naming the field when an expression is invalid.
class HttpRuleMatcher {
 public:
  explicit HttpRuleMatcher(const policy::HttpRule& rule);
  bool matches(const HttpRequestView& request) const;

 private:
  struct Header {
    std::string name;
    std::optional<std::string> value;  // nullopt: presence is enough
  };
  std::unique_ptr<re2::RE2> method_, path_, host_;  // null: matches anything
  std::vector<Header> headers_;
};

// Rules OR: a request is allowed when any rule matches it.
class HttpRuleSet {
 public:
  HttpRuleSet() = default;
  explicit HttpRuleSet(const std::vector<policy::HttpRule>& rules);
  void add(const policy::HttpRule& rule);
  bool matches(const HttpRequestView& request) const;
  bool empty() const { return rules_.empty(); }

 private:
  std::vector<std::shared_ptr<const HttpRuleMatcher>> rules_;
};

}  // namespace pilus::proxy
