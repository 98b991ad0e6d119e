#include "manifest/yaml_stream.h"

namespace pilus::manifest {

namespace {

// "---" or "..." at the start of a line, followed by whitespace or the end of the line.
bool is_marker_line(std::string_view line, std::string_view marker) {
  if (!line.starts_with(marker)) return false;
  if (line.size() == marker.size()) return true;
  char next = line[marker.size()];
  return next == ' ' || next == '\t' || next == '\r' || next == '\n';
}

}  // namespace

std::optional<std::vector<YamlChunk>> split_yaml_stream(std::string_view text) {
  std::vector<YamlChunk> chunks;
  size_t chunk_start = 0;
  int chunk_line = 0, line = 0;
  for (size_t pos = 0; pos < text.size(); ++line) {
    size_t end = text.find('\n', pos);
    end = end == std::string_view::npos ? text.size() : end + 1;
    std::string_view current = text.substr(pos, end - pos);
    if (current.starts_with('%') || is_marker_line(current, "...")) return std::nullopt;
    if (is_marker_line(current, "---") && pos > chunk_start) {
      chunks.push_back({text.substr(chunk_start, pos - chunk_start), chunk_line});
      chunk_start = pos;
      chunk_line = line;
    }
    pos = end;
  }
  if (chunk_start < text.size() || chunks.empty()) chunks.push_back({text.substr(chunk_start), chunk_line});
  return chunks;
}

}  // namespace pilus::manifest
