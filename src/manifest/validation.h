// Checks shared by all manifest kinds: Kubernetes name/label syntax, and a strict reader
// that walks a document, reports wrong types with their field path and rejects unknown fields.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "manifest/document.h"

namespace pilus::manifest {

// A syntax check: why `s` is invalid (a sentence naming the value), or nullopt.
using Check = std::function<std::optional<std::string>(std::string_view)>;

std::optional<std::string> dns_label_error(std::string_view s);      // RFC 1123 label, 1-63 chars
std::optional<std::string> dns_subdomain_error(std::string_view s);  // dot-separated labels, <= 253 chars
std::optional<std::string> label_key_error(std::string_view s);      // [prefix/]name; also annotation keys
std::optional<std::string> label_value_error(std::string_view s);    // may be empty
std::optional<std::string> port_name_error(std::string_view s);      // IANA service name
std::optional<std::string> env_name_error(std::string_view s);       // printable ASCII without '='

// How error messages show a value: "http", 80, true, null, "a map", "a list".
std::string describe_value(const nlohmann::json& v);

// Field paths as shown to users: `spec.containers[0].name`, `metadata.labels["app.kubernetes.io/name"]`.
std::string field_path(std::string_view parent, std::string_view key);
std::string index_path(std::string_view parent, size_t index);

// Throws `<where>: <path>: <message>` (empty parts left out).
[[noreturn]] void fail_field(const std::string& where, const std::string& path, const std::string& message);

// Warnings: a field pilus accepts but does not act on (kubectl prints them as `Warning: ...`).
// Parsers report them with Value::warn; they are collected while a WarningScope is alive on
// this thread (parse_all opens one) and dropped otherwise (e.g. objects read back from the store).
class WarningScope {
 public:
  explicit WarningScope(std::vector<std::string>& sink);
  ~WarningScope();
  WarningScope(const WarningScope&) = delete;
  WarningScope& operator=(const WarningScope&) = delete;

 private:
  std::vector<std::string>* previous_;
};
// Adds `<where>: <path>: <message>` to the open scope's warnings, once.
void warn_field(const std::string& where, const std::string& path, const std::string& message);

class ObjectReader;

// A value inside a document plus the path and document description that name it in
// errors. Refers to the JSON it was made from: do not let it outlive the document.
class Value {
 public:
  Value(const nlohmann::json& json, std::string path, std::string where)
      : json_(&json), path_(std::move(path)), where_(std::move(where)) {}

  const nlohmann::json& json() const { return *json_; }
  const std::string& path() const { return path_; }
  const std::string& where() const { return where_; }

  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
    fail_field(where_, path_, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) const {
    warn_field(where_, path_, fmt::format(format, std::forward<Args>(args)...));
  }
  // True for null, {} and [] and for maps and lists made only of those (`status: {loadBalancer: {}}`).
  bool is_empty_structure() const;

  // Typed getters: each fails naming the field and the expected type.
  std::string string() const;
  std::string string(const Check& check) const;
  std::string one_of(std::initializer_list<std::string_view> allowed) const;
  int64_t integer() const;
  int64_t integer(int64_t min, int64_t max) const;
  bool boolean() const;
  std::vector<Value> list() const;
  std::vector<std::string> string_list(const Check& check = {}) const;
  std::map<std::string, std::string> string_map(const Check& key_check = {}, const Check& value_check = {}) const;
  std::map<std::string, std::string> labels() const;       // Kubernetes label syntax, values must be strings
  std::map<std::string, std::string> annotations() const;  // qualified-name keys, any string values

  // Reads a map strictly: `read(ObjectReader&)` takes the fields it knows, then any
  // field it did not ask for is an error. Returns whatever `read` returns.
  template <typename F>
  auto object(F&& read) const;

 private:
  ObjectReader open_object() const;

  const nlohmann::json* json_;
  std::string path_;
  std::string where_;
};

// The fields of one map being read; remembers which ones were asked for.
class ObjectReader {
 public:
  // A null value counts as absent, as in Kubernetes (`labels:` with nothing after it).
  std::optional<Value> optional(std::string_view key);
  Value required(std::string_view key);
  // Accepts a field without reading it (e.g. one already checked elsewhere).
  void ignore(std::string_view key);

  const Value& self() const { return self_; }

  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
    fail_field(self_.where(), self_.path(), fmt::format(format, std::forward<Args>(args)...));
  }

  // Throws `unknown field "<path>"` for the first field nobody asked for.
  void finish() const;

 private:
  friend class Value;
  explicit ObjectReader(Value self) : self_(std::move(self)) {}

  Value self_;
  std::set<std::string, std::less<>> asked_;
};

template <typename F>
auto Value::object(F&& read) const {
  ObjectReader reader = open_object();
  using Result = std::invoke_result_t<F, ObjectReader&>;
  if constexpr (std::is_void_v<Result>) {
    std::forward<F>(read)(reader);
    reader.finish();
  } else {
    Result result = std::forward<F>(read)(reader);
    reader.finish();
    return result;
  }
}

// `status` is written by the server, never by the user: Kubernetes drops it from what is applied,
// and so does pilus (with a warning when it holds anything, as `kubectl get -o yaml` output does).
void read_status(ObjectReader& root);

// Reads a whole document strictly; apiVersion and kind are accepted as already
// checked by the kind dispatch (object.cpp).
template <typename F>
auto read_document(const Document& d, F&& read) {
  Value root(d.body, "", d.describe());
  return root.object([&](ObjectReader& r) {
    r.ignore("apiVersion");
    r.ignore("kind");
    read_status(r);
    return std::forward<F>(read)(r);
  });
}

enum class Scope { kNamespaced, kCluster };

struct Metadata {
  std::string name;
  std::string ns;  // "default" when absent; "" for cluster-scoped kinds
  std::map<std::string, std::string> labels, annotations;
};

// metadata{name, namespace (namespaced kinds only), labels, annotations}, plus creationTimestamp,
// which kubectl's generated manifests carry as null and the server sets (a value: a warning); `name_check`
// because kinds differ (pods: DNS label, Services: DNS-1035, policies: subdomain).
Metadata read_metadata(ObjectReader& root, Scope scope, const Check& name_check);

}  // namespace pilus::manifest
