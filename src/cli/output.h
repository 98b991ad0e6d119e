// Structured output for the CLI: JSON as the API returns it, or the same as YAML (kubectl -o yaml).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace pilus::cli {

// Block-style YAML of a JSON value; strings that YAML would read as something else ("80", "true",
// "null", "") are quoted, so the text reads back as the same JSON.
std::string to_yaml(const nlohmann::json& value);

// Prints `value` for -o json or -o yaml and returns true; returns false for the human formats
// ("" / "table"), which the command prints itself. Any other format throws pilus::Error listing
// json, yaml and `human` (the command's own, e.g. "wide, name").
bool print_structured(const std::string& output, const nlohmann::json& value, const std::string& human = "table");

}  // namespace pilus::cli
