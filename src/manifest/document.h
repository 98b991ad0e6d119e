// Manifest input: reading files/directories/stdin and splitting YAML (or JSON) into documents.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pilus::manifest {

struct Source {
  std::string name;  // file path or "<stdin>"
  std::string text;
};

// "-" reads stdin; a directory yields its *.yaml, *.yml and *.json files sorted by
// name (not recursive, dotfiles skipped); anything else is read as one file.
std::vector<Source> read_sources(const std::string& path);

struct Document {
  std::string source;
  int index = 0;  // 1-based position in its source; 0 when not from a multi-document source
  std::string api_version, kind;
  nlohmann::json body;  // the whole document as JSON

  std::string name() const;  // metadata.name, "" when absent
  std::string ns() const;    // metadata.namespace; "default" when absent for namespaced kinds, "" for cluster-scoped ones
  std::string describe() const;  // `app.yaml document 2 (Pod default/frontend)`
};

// Skips empty documents but keeps counting them, so `index` matches the document's
// position in the file. Throws naming the source and line on malformed YAML.
std::vector<Document> parse_documents(const Source& s);

// For objects read back from the agent's store (index 0).
Document document_from_json(nlohmann::json body, std::string source = "store");

}  // namespace pilus::manifest
