// The manifests under examples/ (the seed's policies verbatim), read by tests instead of copies.
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace pilus::testing {

// examples/<path>, e.g. example_manifest("policies/allow-http.yaml"); throws when it cannot be read.
inline std::string example_manifest(const std::string& path) {
  std::ifstream in(std::string(PILUS_EXAMPLES_DIR) + "/" + path);
  if (!in) throw std::runtime_error("cannot read examples/" + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace pilus::testing
