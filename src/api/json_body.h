// Reading JSON from outside: a request body, or the agent's answer in the CLI. Every field is reached
// through JsonField, which knows its path, so a missing field or a wrong type is an error naming it
// ("request body: sources[0].text: must be a string, not a number"; the API answers it 400) instead
// of surfacing as a library type error. The typed API (api/v1/schema.h) reads through it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pilus::api {

class JsonField {
 public:
  // `where` names the whole document in messages: "request body", "the agent's answer".
  JsonField(nlohmann::json& value, std::string path, std::string where = "request body")
      : value_(&value), path_(std::move(path)), where_(std::move(where)) {}

  const std::string& path() const { return path_; }  // "" for the body itself
  const nlohmann::json& value() const { return *value_; }

  bool has(const std::string& key) const;         // an object with that key
  JsonField at(const std::string& key) const;     // required member of an object
  std::vector<JsonField> items() const;           // elements of an array
  std::vector<std::pair<std::string, JsonField>> members() const;  // members of an object
  void require_object() const;
  std::string string() const;
  std::string take_string();                      // moves the text out (large manifests are not copied)
  nlohmann::json take();                          // the value as it is, moved out
  bool boolean() const;
  std::int64_t integer() const;
  std::uint64_t unsigned_integer() const;
  double number() const;
  // "<where>: <path>: <problem>"
  [[noreturn]] void fail_here(const std::string& problem) const;

 private:
  [[noreturn]] void wrong_type(const char* expected) const;
  void require(bool ok, const char* expected) const {
    if (!ok) wrong_type(expected);
  }

  nlohmann::json* value_;
  std::string path_;
  std::string where_;
};

// Parses `body` (which is released: only the parsed form stays) into `out`; invalid JSON fails
// with pilus::Error. The returned field views `out`.
JsonField parse_json_body(std::string&& body, nlohmann::json& out);

}  // namespace pilus::api
