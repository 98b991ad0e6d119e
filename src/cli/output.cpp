#include "cli/output.h"

#include <iostream>

#include <yaml-cpp/yaml.h>

#include "common/error.h"

namespace pilus::cli {

namespace {

// Would a plain scalar read back as something other than this string?
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  try {
    YAML::Node n = YAML::Load(s);
    if (!n.IsScalar() || n.Scalar() != s || n.Tag() == "!") return true;
    bool b;
    double d;
    if (YAML::convert<bool>::decode(n, b) || YAML::convert<double>::decode(n, d)) return true;
    if (s == "~" || s == "null" || s == "Null" || s == "NULL") return true;
  } catch (const YAML::Exception&) {
    return true;
  }
  return s.find_first_of(":#\n'\"{}[],&*!|>%@`") != std::string::npos || s.front() == ' ' || s.back() == ' ' ||
         s.front() == '-' || s.front() == '?';
}

void emit(YAML::Emitter& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& [key, item] : v.items()) {
        out << YAML::Key;
        if (needs_quotes(key))
          out << YAML::DoubleQuoted << key;
        else
          out << key;
        out << YAML::Value;
        emit(out, item);
      }
      out << YAML::EndMap;
      return;
    case nlohmann::json::value_t::array:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : v) emit(out, item);
      out << YAML::EndSeq;
      return;
    case nlohmann::json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (needs_quotes(s))
        out << YAML::DoubleQuoted << s;
      else
        out << s;
      return;
    }
    case nlohmann::json::value_t::null: out << YAML::Null; return;
    case nlohmann::json::value_t::boolean: out << (v.get<bool>() ? "true" : "false"); return;
    default: out << v.dump(); return;
  }
}

}  // namespace

std::string to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  out.SetMapFormat(YAML::Block);
  emit(out, value);
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

bool print_structured(const std::string& output, const nlohmann::json& value, const std::string& human) {
  if (output == "json") {
    std::cout << value.dump(2) << "\n";
    return true;
  }
  if (output == "yaml") {
    std::cout << to_yaml(value);
    return true;
  }
  if (output.empty() || output == "table") return false;
  // `human` lists the command's own formats, comma-separated.
  for (size_t start = 0; start <= human.size();) {
    size_t comma = human.find(',', start);
    std::string name = human.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    if (name == output) return false;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  fail("unknown output format \"{}\" (known: json, yaml, {})", output, human);
}

}  // namespace pilus::cli
