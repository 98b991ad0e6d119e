#include "api/json_body.h"

#include "common/error.h"

namespace pilus::api {

namespace {

const char* type_name(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number";
    default: return "something else";
  }
}

}  // namespace

void JsonField::fail_here(const std::string& problem) const {
  fail("{}: {}: {}", where_, path_.empty() ? "the body" : path_, problem);
}

void JsonField::wrong_type(const char* expected) const {
  fail_here(std::string("must be ") + expected + ", not " + type_name(*value_));
}

bool JsonField::has(const std::string& key) const { return value_->is_object() && value_->contains(key); }

JsonField JsonField::at(const std::string& key) const {
  require(value_->is_object(), "an object");
  auto it = value_->find(key);
  std::string path = path_.empty() ? key : path_ + "." + key;
  if (it == value_->end()) fail("{}: {}: missing", where_, path);
  return JsonField(*it, std::move(path), where_);
}

std::vector<JsonField> JsonField::items() const {
  require(value_->is_array(), "an array");
  std::vector<JsonField> out;
  out.reserve(value_->size());
  for (size_t i = 0; i < value_->size(); ++i)
    out.emplace_back((*value_)[i], path_ + "[" + std::to_string(i) + "]", where_);
  return out;
}

std::vector<std::pair<std::string, JsonField>> JsonField::members() const {
  require(value_->is_object(), "an object");
  std::vector<std::pair<std::string, JsonField>> out;
  out.reserve(value_->size());
  for (auto& [key, value] : value_->items())
    out.emplace_back(key, JsonField(value, path_.empty() ? key : path_ + "." + key, where_));
  return out;
}

void JsonField::require_object() const { require(value_->is_object(), "an object"); }

nlohmann::json JsonField::take() { return std::move(*value_); }

std::string JsonField::string() const {
  require(value_->is_string(), "a string");
  return value_->get<std::string>();
}

std::string JsonField::take_string() {
  require(value_->is_string(), "a string");
  return std::move(value_->get_ref<std::string&>());
}

bool JsonField::boolean() const {
  require(value_->is_boolean(), "a boolean");
  return value_->get<bool>();
}

std::int64_t JsonField::integer() const {
  require(value_->is_number_integer(), "an integer");
  if (value_->is_number_unsigned() && value_->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
    fail_here(std::to_string(value_->get<std::uint64_t>()) + " is too large");
  return value_->get<std::int64_t>();
}

std::uint64_t JsonField::unsigned_integer() const {
  require(value_->is_number_integer(), "an integer");
  if (!value_->is_number_unsigned() && value_->get<std::int64_t>() < 0)
    fail_here(std::to_string(value_->get<std::int64_t>()) + " is negative");
  return value_->get<std::uint64_t>();
}

double JsonField::number() const {
  require(value_->is_number(), "a number");
  return value_->get<double>();
}

JsonField parse_json_body(std::string&& body, nlohmann::json& out) {
  std::string text = std::move(body);
  try {
    out = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("invalid JSON: {}", e.what());
  }
  return JsonField(out, "");
}

}  // namespace pilus::api
