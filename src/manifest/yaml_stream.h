// Splitting a YAML stream into its documents before parsing, so each document's yaml-cpp nodes
// (about 13 KiB for a small policy) live only while that document is converted: YAML::LoadAll
// keeps every document's nodes at once (about 150 MiB for one apply of 10000 policies).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace pilus::manifest {

struct YamlChunk {
  std::string_view text;  // starts at a "---" line, except the first chunk
  int first_line = 0;     // 0-based line of the stream where text starts
};

// Cuts before every line that starts with "---" followed by a space, a tab or the line's end:
// in YAML such a line always starts a new document, whatever precedes it. The first chunk holds
// what comes before the first marker (zero or one document); every other chunk exactly one.
// nullopt when the stream uses what this plain cut does not follow: directives ("%YAML",
// "%TAG") and document end markers ("..."); the caller then parses the stream whole.
std::optional<std::vector<YamlChunk>> split_yaml_stream(std::string_view text);

}  // namespace pilus::manifest
