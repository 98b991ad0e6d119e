// Kubernetes name and label syntax, and the strict field reader used by every manifest kind.
#include "manifest/validation.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/error.h"

namespace pilus::manifest {

using nlohmann::json;

namespace {

// Values in messages are JSON-quoted so control characters and spaces are visible.
std::string quote(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string shown(s.substr(0, kMax));
  std::string out = json(shown).dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > kMax) out.insert(out.size() - 1, "...");
  return out;
}

std::string show_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", u);
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_dns_char(char c) { return is_lower_alnum(c) || c == '-'; }
bool is_label_char(char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; }

struct Syntax {
  size_t max;
  bool (*allowed)(char);
  const char* allowed_text;
  bool (*edge)(char);
  const char* edge_text;
};

constexpr Syntax kDnsLabel{63, is_dns_char, "lowercase letters, digits and '-'", is_lower_alnum,
                           "a lowercase letter or digit"};
constexpr Syntax kLabelName{63, is_label_char, "letters, digits, '-', '_' and '.'", is_alnum, "a letter or digit"};

// The reason `s` breaks `syn`, without naming the value (callers add that).
std::optional<std::string> syntax_reason(const Syntax& syn, std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > syn.max) return fmt::format("must be at most {} characters (has {})", syn.max, s.size());
  for (char c : s) {
    if (!syn.allowed(c)) return fmt::format("must contain only {} (found {})", syn.allowed_text, show_char(c));
  }
  if (!syn.edge(s.front()) || !syn.edge(s.back())) return fmt::format("must start and end with {}", syn.edge_text);
  return std::nullopt;
}

std::optional<std::string> subdomain_reason(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > 253) return fmt::format("must be at most 253 characters (has {})", s.size());
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view part = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty()) return std::string("must not have empty parts between dots");
    for (char c : part) {
      if (!is_dns_char(c)) return fmt::format("must contain only lowercase letters, digits, '-' and '.' (found {})", show_char(c));
    }
    if (!is_lower_alnum(part.front()) || !is_lower_alnum(part.back())) {
      return std::string("each dot-separated part must start and end with a lowercase letter or digit");
    }
    if (dot == std::string_view::npos) return std::nullopt;
    start = dot + 1;
  }
}

std::optional<std::string> invalid(const char* what, std::string_view s, std::optional<std::string> reason) {
  if (!reason) return std::nullopt;
  return fmt::format("invalid {} {}: {}", what, quote(s), *reason);
}

// Edits (insert, delete, substitute, swap adjacent) between two keys, ignoring case.
size_t edit_distance(std::string_view a, std::string_view b) {
  auto same = [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  };
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (same(a[i - 1], b[j - 1]) ? 0 : 1)});
      if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The candidate close enough to `key` to be what was meant, or "". Short keys
// need proportionally closer matches, or "n" would "mean" "b".
template <typename Candidates>
std::string closest(std::string_view key, const Candidates& candidates) {
  std::string best;
  size_t best_distance = 3;
  for (const std::string& candidate : candidates) {
    if (candidate == key) continue;
    size_t d = edit_distance(key, candidate);
    if (d < best_distance && d * 3 <= std::max(key.size(), candidate.size())) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

bool is_simple_key(std::string_view key) {
  if (key.empty() || !(std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_')) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

}  // namespace

std::optional<std::string> dns_label_error(std::string_view s) {
  return invalid("DNS-1123 label", s, syntax_reason(kDnsLabel, s));
}

std::optional<std::string> dns_subdomain_error(std::string_view s) {
  return invalid("DNS-1123 subdomain", s, subdomain_reason(s));
}

std::optional<std::string> label_key_error(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return invalid("label key", s, syntax_reason(kLabelName, s));
  std::string_view prefix = s.substr(0, slash);
  std::string_view name = s.substr(slash + 1);
  if (name.find('/') != std::string_view::npos) return invalid("label key", s, "must contain at most one '/'");
  if (auto reason = subdomain_reason(prefix)) {
    return invalid("label key", s, "prefix before '/' " + *reason);
  }
  if (auto reason = syntax_reason(kLabelName, name)) return invalid("label key", s, "name after '/' " + *reason);
  return std::nullopt;
}

std::optional<std::string> label_value_error(std::string_view s) {
  if (s.empty()) return std::nullopt;
  return invalid("label value", s, syntax_reason(kLabelName, s));
}

std::optional<std::string> port_name_error(std::string_view s) {
  constexpr Syntax kPortName{15, is_dns_char, "lowercase letters, digits and '-'", is_lower_alnum,
                             "a lowercase letter or digit"};
  auto reason = syntax_reason(kPortName, s);
  if (!reason && std::none_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
    reason = "must contain at least one letter";
  }
  if (!reason && s.find("--") != std::string_view::npos) reason = "must not contain \"--\"";
  return invalid("port name", s, reason);
}

std::optional<std::string> env_name_error(std::string_view s) {
  std::optional<std::string> reason;
  if (s.empty()) {
    reason = "must not be empty";
  } else {
    for (char c : s) {
      if (c < 0x20 || c > 0x7e || c == '=') {
        reason = fmt::format("must contain only printable ASCII characters other than '=' (found {})", show_char(c));
        break;
      }
    }
  }
  return invalid("environment variable name", s, reason);
}

std::string describe_value(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::string:
      return quote(v.get_ref<const std::string&>());
    case json::value_t::object:
      return "a map";
    case json::value_t::array:
      return "a list";
    case json::value_t::number_float: {
      double d = v.get<double>();
      if (std::isnan(d)) return ".nan";
      if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
      return v.dump();
    }
    default:
      return v.dump();
  }
}

std::string field_path(std::string_view parent, std::string_view key) {
  if (is_simple_key(key)) return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
  return fmt::format("{}[{}]", parent, quote(key));
}

std::string index_path(std::string_view parent, size_t index) { return fmt::format("{}[{}]", parent, index); }

void fail_field(const std::string& where, const std::string& path, const std::string& message) {
  std::string out = where;
  for (const std::string* part : {&path, &message}) {
    if (part->empty()) continue;
    if (!out.empty()) out += ": ";
    out += *part;
  }
  throw Error(out);
}

namespace {
thread_local std::vector<std::string>* warning_sink = nullptr;
}  // namespace

WarningScope::WarningScope(std::vector<std::string>& sink) : previous_(warning_sink) { warning_sink = &sink; }
WarningScope::~WarningScope() { warning_sink = previous_; }

void warn_field(const std::string& where, const std::string& path, const std::string& message) {
  if (!warning_sink) return;
  std::string out = where;
  for (const std::string* part : {&path, &message}) {
    if (part->empty()) continue;
    if (!out.empty()) out += ": ";
    out += *part;
  }
  if (std::find(warning_sink->begin(), warning_sink->end(), out) == warning_sink->end()) warning_sink->push_back(out);
}

bool Value::is_empty_structure() const {
  if (json_->is_null()) return true;
  if (!json_->is_object() && !json_->is_array()) return false;
  for (const auto& item : *json_)
    if (!Value(item, path_, where_).is_empty_structure()) return false;
  return true;
}

std::string Value::string() const {
  if (json_->is_string()) return json_->get<std::string>();
  // Unquoted true/yes/80 in YAML are not strings; say how to fix it.
  if (json_->is_boolean() || json_->is_number()) fail("must be a string, got {} (put it in quotes)", describe_value(*json_));
  fail("must be a string, got {}", describe_value(*json_));
}

std::string Value::string(const Check& check) const {
  std::string s = string();
  if (check) {
    if (auto error = check(s)) fail("{}", *error);
  }
  return s;
}

std::string Value::one_of(std::initializer_list<std::string_view> allowed) const {
  if (json_->is_string()) {
    const std::string& s = json_->get_ref<const std::string&>();
    if (std::find(allowed.begin(), allowed.end(), s) != allowed.end()) return s;
  }
  fail("must be one of {}, got {}", fmt::join(allowed, ", "), describe_value(*json_));
}

int64_t Value::integer() const {
  if (json_->is_number_integer() && !(json_->is_number_unsigned() && json_->get<uint64_t>() > INT64_MAX)) {
    return json_->get<int64_t>();
  }
  fail("must be an integer, got {}", describe_value(*json_));
}

int64_t Value::integer(int64_t min, int64_t max) const {
  if (json_->is_number_integer()) {
    bool too_big = json_->is_number_unsigned() && json_->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX);
    if (!too_big) {
      int64_t v = json_->get<int64_t>();
      if (v >= min && v <= max) return v;
    }
  }
  fail("must be an integer between {} and {}, got {}", min, max, describe_value(*json_));
}

bool Value::boolean() const {
  if (json_->is_boolean()) return json_->get<bool>();
  fail("must be true or false, got {}", describe_value(*json_));
}

std::vector<Value> Value::list() const {
  if (!json_->is_array()) fail("must be a list, got {}", describe_value(*json_));
  std::vector<Value> out;
  out.reserve(json_->size());
  for (size_t i = 0; i < json_->size(); ++i) out.emplace_back((*json_)[i], index_path(path_, i), where_);
  return out;
}

std::vector<std::string> Value::string_list(const Check& check) const {
  std::vector<std::string> out;
  for (const Value& item : list()) out.push_back(item.string(check));
  return out;
}

std::map<std::string, std::string> Value::string_map(const Check& key_check, const Check& value_check) const {
  if (!json_->is_object()) fail("must be a map, got {}", describe_value(*json_));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : json_->items()) {
    if (key_check) {
      if (auto error = key_check(key)) fail("{}", *error);
    }
    out.emplace(key, Value(value, field_path(path_, key), where_).string(value_check));
  }
  return out;
}

std::map<std::string, std::string> Value::labels() const {
  return string_map(label_key_error, label_value_error);
}

std::map<std::string, std::string> Value::annotations() const {
  auto out = string_map(label_key_error);
  // The same cap as Kubernetes, which stores annotations in etcd as we may.
  constexpr size_t kMaxTotal = 256 * 1024;
  size_t total = 0;
  for (const auto& [key, value] : out) total += key.size() + value.size();
  if (total > kMaxTotal) fail("annotations total {} bytes, more than the limit of {}", total, kMaxTotal);
  return out;
}

ObjectReader Value::open_object() const {
  if (!json_->is_object()) fail("must be a map, got {}", describe_value(*json_));
  return ObjectReader(*this);
}

std::optional<Value> ObjectReader::optional(std::string_view key) {
  asked_.emplace(key);
  const json& object = self_.json();
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return Value(*it, field_path(self_.path(), key), self_.where());
}

Value ObjectReader::required(std::string_view key) {
  if (auto v = optional(key)) return *v;
  std::string message = fmt::format("missing required field \"{}\"", field_path(self_.path(), key));
  // Absent fields are noticed before unknown ones, so point at a likely misspelling here.
  std::vector<std::string> unknown;
  for (const auto& [present, value] : self_.json().items()) {
    if (!asked_.contains(present)) unknown.push_back(present);
  }
  if (std::string typo = closest(key, unknown); !typo.empty()) message += fmt::format(" (is \"{}\" a typo?)", typo);
  fail_field(self_.where(), "", message);
}

void ObjectReader::ignore(std::string_view key) { asked_.emplace(key); }

void ObjectReader::finish() const {
  for (const auto& [key, value] : self_.json().items()) {
    if (asked_.contains(key)) continue;
    std::string message = fmt::format("unknown field \"{}\"", field_path(self_.path(), key));
    // Suggest the closest known field that is absent: usually a typo or wrong case.
    std::vector<std::string> absent;
    for (const std::string& known : asked_) {
      if (!self_.json().contains(known)) absent.push_back(known);
    }
    if (std::string best = closest(key, absent); !best.empty()) message += fmt::format(" (did you mean \"{}\"?)", best);
    fail_field(self_.where(), "", message);
  }
}

Metadata read_metadata(ObjectReader& root, Scope scope, const Check& name_check) {
  return root.required("metadata").object([&](ObjectReader& m) {
    Metadata meta;
    meta.name = m.required("name").string(name_check);
    if (scope == Scope::kNamespaced) {
      auto ns = m.optional("namespace");
      meta.ns = ns ? ns->string(dns_label_error) : "default";
    }
    if (auto v = m.optional("labels")) meta.labels = v->labels();
    if (auto v = m.optional("annotations")) meta.annotations = v->annotations();
    if (auto v = m.optional("creationTimestamp")) {
      v->string();
      v->warn("ignored: the time an object was created is set by pilus, not by the manifest");
    }
    return meta;
  });
}

void read_status(ObjectReader& root) {
  auto status = root.optional("status");
  if (!status) return;
  if (!status->json().is_object()) status->fail("must be a map, got {}", describe_value(status->json()));
  if (!status->is_empty_structure()) status->warn("ignored: status is reported by pilus, not set by a manifest");
}

}  // namespace pilus::manifest
