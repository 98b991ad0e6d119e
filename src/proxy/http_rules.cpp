#include "proxy/http_rules.h"

#include <strings.h>

#include "common/error.h"

namespace pilus::proxy {

namespace {

std::unique_ptr<re2::RE2> compile(const std::string& expr, const char* field) {
  if (expr.empty()) return nullptr;
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<re2::RE2>(expr, options);
  if (!re->ok()) fail("invalid regular expression in http {}: '{}': {}", field, expr, re->error());
  return re;
}

bool full_match(const std::unique_ptr<re2::RE2>& re, std::string_view text) {
  return !re || re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *re);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

HttpRuleMatcher::HttpRuleMatcher(const policy::HttpRule& rule)
    : method_(compile(rule.method, "method")), path_(compile(rule.path, "path")), host_(compile(rule.host, "host")) {
  for (const std::string& h : rule.headers) {
    std::string_view text = h;
    size_t colon = text.find(':');
    Header header;
    header.name = std::string(trim(text.substr(0, colon)));
    if (colon != std::string_view::npos) header.value = std::string(trim(text.substr(colon + 1)));
    if (header.name.empty()) fail("invalid http header rule '{}': expected \"Name\" or \"Name: value\"", h);
    headers_.push_back(std::move(header));
  }
}

bool HttpRuleMatcher::matches(const HttpRequestView& r) const {
  if (!full_match(method_, r.method) || !full_match(path_, r.path) || !full_match(host_, r.host)) return false;
  for (const Header& want : headers_) {
    bool found = false;
    for (const auto& [name, value] : r.headers)
      if (iequals(name, want.name) && (!want.value || trim(value) == *want.value)) {
        found = true;
        break;
      }
    if (!found) return false;
  }
  return true;
}

HttpRuleSet::HttpRuleSet(const std::vector<policy::HttpRule>& rules) {
  for (const auto& r : rules) add(r);
}

void HttpRuleSet::add(const policy::HttpRule& rule) { rules_.push_back(std::make_shared<const HttpRuleMatcher>(rule)); }

bool HttpRuleSet::matches(const HttpRequestView& request) const {
  for (const auto& r : rules_)
    if (r->matches(request)) return true;
  return false;
}

}  // namespace pilus::proxy
