// How the API's types meet JSON. Each type lists its JSON keys once, in a `fields` function that
// serves both directions (the agent writes, the CLI reads):
//
//   void fields(auto& f, Is<Container> auto& c) {
//     f("name", c.name);
//     f("image", c.image, Presence::kOmitEmpty);
//   }
//
// to_json / from_json below then work for nlohmann (`nlohmann::json j = pod;`), and decode() reads
// with errors naming the field: "the agent's answer: items[2].status.podIP: missing".
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "common/error.h"

namespace pilus::api::v1 {

// How a field appears on the wire; the names follow Go's encoding/json, which the Kubernetes API uses.
enum class Presence {
  kRequired,       // always written; reading fails naming it when absent
  kOmitEmpty,      // written only when not empty ("", 0, false, [], {}, nullopt); absent reads as empty
  kNullWhenEmpty,  // a std::optional written as null when empty; absent or null reads as empty
};

// `Is<T> auto& v` takes a T and a const T alike: one `fields` for writing and for reading.
template <class T, class U>
concept Is = std::same_as<std::remove_const_t<T>, U>;

namespace detail {

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

template <class T>
struct IsStringMap : std::false_type {};
template <class T>
struct IsStringMap<std::map<std::string, T>> : std::true_type {};

// Lets the `Described` concept ask whether a type has `fields`.
struct Probe {
  template <class T>
  void operator()(const char*, T&, Presence = Presence::kRequired) {}
};

template <class T>
bool is_empty(const T& v) {
  if constexpr (std::is_same_v<T, nlohmann::json>)
    return v.is_null();
  else if constexpr (IsOptional<T>::value)
    return !v.has_value();
  else if constexpr (requires { v.empty(); })
    return v.empty();
  else if constexpr (std::is_arithmetic_v<T>)
    return v == T{};
  else
    return false;  // a struct is never empty: kOmitEmpty is for scalars, strings and containers
}

}  // namespace detail

template <class T>
concept Described = requires(T& v, detail::Probe& p) { fields(p, v); };

// Writes a type's fields into a JSON object.
class Writer {
 public:
  explicit Writer(nlohmann::json& out) : out_(out) {}

  template <class T>
  void operator()(const char* key, const T& value, Presence presence = Presence::kRequired) {
    if constexpr (detail::IsOptional<T>::value) {
      if (value)
        out_[key] = *value;
      else if (presence != Presence::kOmitEmpty)
        out_[key] = nullptr;
    } else {
      if (presence == Presence::kOmitEmpty && detail::is_empty(value)) return;
      out_[key] = value;
    }
  }

 private:
  nlohmann::json& out_;
};

template <class T>
void read(JsonField field, T& out);

// Reads a type's fields from a JSON object, each through JsonField (which names it on errors).
class Reader {
 public:
  explicit Reader(JsonField object) : object_(std::move(object)) { object_.require_object(); }

  template <class T>
  void operator()(const char* key, T& value, Presence presence = Presence::kRequired) {
    if (!object_.has(key)) {
      if (presence == Presence::kRequired) object_.at(key);  // fails: "<path>.<key>: missing"
      value = T{};
      return;
    }
    JsonField field = object_.at(key);
    if constexpr (detail::IsOptional<T>::value) {
      if (field.value().is_null() && !std::is_same_v<typename T::value_type, nlohmann::json>) {
        value.reset();
        return;
      }
      typename T::value_type v{};
      read(field, v);
      value = std::move(v);
    } else {
      read(field, value);
    }
  }

 private:
  JsonField object_;
};

// One value of any type the API uses. A type of its own (not a struct of fields) reads itself with
// a `read_value(JsonField&, T&)` found by argument-dependent lookup.
template <class T>
void read(JsonField field, T& out) {
  if constexpr (requires { read_value(field, out); }) {
    read_value(field, out);
  } else if constexpr (std::is_same_v<T, std::string>) {
    out = field.take_string();
  } else if constexpr (std::is_same_v<T, bool>) {
    out = field.boolean();
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    std::int64_t v = field.integer();
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
      field.fail_here(std::to_string(v) + " is out of range");
    out = static_cast<T>(v);
  } else if constexpr (std::is_integral_v<T>) {
    std::uint64_t v = field.unsigned_integer();
    if (v > std::numeric_limits<T>::max()) field.fail_here(std::to_string(v) + " is out of range");
    out = static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    out = static_cast<T>(field.number());
  } else if constexpr (std::is_same_v<T, nlohmann::json>) {
    out = field.take();
  } else if constexpr (detail::IsVector<T>::value) {
    auto items = field.items();
    out.clear();
    out.reserve(items.size());
    for (auto& item : items) read(item, out.emplace_back());
  } else if constexpr (detail::IsStringMap<T>::value) {
    out.clear();
    for (auto& [key, value] : field.members()) read(value, out[key]);
  } else {
    static_assert(Described<T>, "an API type needs fields() or read_value()");
    Reader reader(field);
    fields(reader, out);
  }
}

template <Described T>
void to_json(nlohmann::json& j, const T& value) {
  j = nlohmann::json::object();
  Writer writer(j);
  fields(writer, value);
}

// For nlohmann's get<T>(); decode() below says where the JSON came from in its errors.
template <Described T>
void from_json(const nlohmann::json& j, T& value) {
  nlohmann::json copy = j;
  read(JsonField(copy, "", "JSON"), value);
}

// Reads `json` (moved from: large strings are not copied) as a T; `where` names it in errors
// ("request body", "the agent's answer").
template <class T>
T decode(nlohmann::json json, const std::string& where) {
  T value{};
  read(JsonField(json, "", where), value);
  return value;
}

// The same from text; invalid JSON fails naming `where`.
template <class T>
T parse(std::string_view text, const std::string& where) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", where, e.what());
  }
  return decode<T>(std::move(json), where);
}

}  // namespace pilus::api::v1
