// Reading a JSON request body. Every field is reached through JsonField, which knows its path in
// the body, so a missing field or a wrong type is answered 400 naming it ("request body:
// sources[0].text: must be a string, not a number") instead of surfacing as a library type error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pilus::api {

class JsonField {
 public:
  JsonField(nlohmann::json& value, std::string path) : value_(&value), path_(std::move(path)) {}

  const std::string& path() const { return path_; }  // "" for the body itself
  const nlohmann::json& value() const { return *value_; }

  bool has(const std::string& key) const;         // an object with that key
  JsonField at(const std::string& key) const;     // required member of an object
  std::vector<JsonField> items() const;           // elements of an array
  std::string string() const;
  std::string take_string();                      // moves the text out (large manifests are not copied)
  bool boolean() const;
  std::int64_t integer() const;

 private:
  [[noreturn]] void wrong_type(const char* expected) const;
  void require(bool ok, const char* expected) const {
    if (!ok) wrong_type(expected);
  }

  nlohmann::json* value_;
  std::string path_;
};

// Parses `body` (which is released: only the parsed form stays) into `out`; invalid JSON fails
// with pilus::Error. The returned field views `out`.
JsonField parse_json_body(std::string&& body, nlohmann::json& out);

}  // namespace pilus::api
