// Reads manifest sources and converts each YAML document to JSON with Kubernetes-compatible typing.
#include "manifest/document.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "manifest/object.h"
#include "manifest/validation.h"
#include "manifest/yaml_stream.h"

namespace pilus::manifest {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw system_error(fmt::format("cannot read {}", path), errno);
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  // fread on a directory fails with EISDIR only here, not at fopen.
  if (err != 0) throw system_error(fmt::format("cannot read {}", path), err);
  return text;
}

bool is_manifest_file_name(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;  // editor lock/backup files
  for (std::string_view ext : {".yaml", ".yml", ".json"}) {
    if (name.size() > ext.size() && name.ends_with(ext)) return true;
  }
  return false;
}

// Position of the first byte that is not well-formed UTF-8 (overlongs and
// surrogates included), or npos. Checked up front because nlohmann::json
// refuses to dump invalid UTF-8, which would fail far from the manifest.
size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (int k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

int line_of_offset(std::string_view s, size_t offset) {
  return 1 + static_cast<int>(std::count(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

// Numbers follow the YAML 1.2 core schema, except that digit strings with a
// leading zero ("0080") stay strings: kubectl's YAML 1.1 parser reads them as
// octal, so accepting either meaning would make one manifest mean two things.
bool is_leading_zero_integer(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return s.size() > 1 && s[0] == '0' && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<json> parse_int(std::string_view s) {
  bool negative = false;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    base = s[1] == 'x' ? 16 : 8;
    s.remove_prefix(2);
  } else if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  uint64_t magnitude = 0;
  for (char c : s) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (digit >= base) return std::nullopt;
    if (__builtin_mul_overflow(magnitude, static_cast<uint64_t>(base), &magnitude) ||
        __builtin_add_overflow(magnitude, static_cast<uint64_t>(digit), &magnitude)) {
      return std::nullopt;  // too big for 64 bits: parse_float takes decimal ones
    }
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (magnitude > kMax + 1) return std::nullopt;
    if (magnitude == kMax + 1) return json(std::numeric_limits<int64_t>::min());
    return json(-static_cast<int64_t>(magnitude));
  }
  if (magnitude <= kMax) return json(static_cast<int64_t>(magnitude));
  return json(magnitude);
}

std::optional<double> parse_float(std::string_view s) {
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == ".inf" || s == ".Inf" || s == ".INF") {
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  // [0-9]+(\.[0-9]*)? or \.[0-9]+, then an optional exponent.
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  size_t before = digits();
  size_t after = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    after = digits();
  }
  if (before == 0 && after == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) {
    value = std::numeric_limits<double>::infinity();
  } else if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return negative ? -value : value;
}

std::optional<bool> parse_bool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool is_null_text(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

json resolve_plain(const std::string& s) {
  if (is_null_text(s)) return nullptr;
  if (auto b = parse_bool(s)) return *b;
  if (is_leading_zero_integer(s)) return s;
  if (auto i = parse_int(s)) return *i;
  if (auto f = parse_float(s)) return *f;
  return s;
}

const std::string kTagPrefix = "tag:yaml.org,2002:";

// Turns one YAML document into JSON, failing with the source line on anything
// JSON cannot express faithfully.
class Converter {
 public:
  // first_line: where the parsed text starts in the source (0-based), for error lines.
  Converter(const std::string& source, int first_line) : source_(source), first_line_(first_line) {}

  json convert(const YAML::Node& n, int depth) {
    // Aliases can build cycles and exponential expansions ("billion laughs").
    if (depth > kMaxDepth) fail_at(n, "nested deeper than {} levels (a recursive alias?)", kMaxDepth);
    if (++nodes_ > kMaxNodes) fail_at(n, "more than {} values in one document (alias expansion?)", kMaxNodes);
    switch (n.Type()) {
      case YAML::NodeType::Null:
        return n.Tag() == kTagPrefix + "str" || n.Tag() == "!" ? json("") : json(nullptr);
      case YAML::NodeType::Scalar:
        return scalar(n);
      case YAML::NodeType::Sequence: {
        check_collection_tag(n, "seq");
        json out = json::array();
        for (auto it = n.begin(); it != n.end(); ++it) out.push_back(convert(*it, depth + 1));
        return out;
      }
      case YAML::NodeType::Map:
        check_collection_tag(n, "map");
        return mapping(n, depth);
      default:
        fail_at(n, "undefined YAML node");
    }
  }

 private:
  static constexpr int kMaxDepth = 100;
  static constexpr size_t kMaxNodes = 200000;

  template <typename... Args>
  [[noreturn]] void fail_at(const YAML::Node& n, fmt::format_string<Args...> format, Args&&... args) {
    std::string message = fmt::format(format, std::forward<Args>(args)...);
    const YAML::Mark mark = n.Mark();
    if (mark.is_null()) fail("{}: {}", source_, message);
    fail("{}: line {}: {}", source_, first_line_ + mark.line + 1, message);
  }

  void check_collection_tag(const YAML::Node& n, const std::string& core) {
    const std::string& tag = n.Tag();
    if (tag.empty() || tag == "?" || tag == "!" || tag == kTagPrefix + core) return;
    fail_at(n, "unsupported YAML tag \"{}\"", tag);
  }

  json scalar(const YAML::Node& n) {
    const std::string& tag = n.Tag();
    const std::string& text = n.Scalar();
    if (tag == "?") return resolve_plain(text);
    // Quoted and block scalars carry the non-specific "!" tag: always strings.
    if (tag == "!" || tag == kTagPrefix + "str" || tag == kTagPrefix + "timestamp") return text;
    if (tag == kTagPrefix + "int") {
      if (auto i = parse_int(text)) return *i;
      fail_at(n, "!!int value \"{}\" is not an integer", text);
    }
    if (tag == kTagPrefix + "float") {
      if (auto f = parse_float(text)) return *f;
      if (auto i = parse_int(text)) return i->get<double>();
      fail_at(n, "!!float value \"{}\" is not a number", text);
    }
    if (tag == kTagPrefix + "bool") {
      if (auto b = parse_bool(text)) return *b;
      fail_at(n, "!!bool value \"{}\" is not true or false", text);
    }
    if (tag == kTagPrefix + "null") return nullptr;
    fail_at(n, "unsupported YAML tag \"{}\"", tag);
  }

  std::string key_text(const YAML::Node& k) {
    if (k.Type() == YAML::NodeType::Scalar) return k.Scalar();
    if (k.Type() == YAML::NodeType::Null) fail_at(k, "empty or null mapping key");
    fail_at(k, "mapping keys must be scalars, not lists or maps");
  }

  json mapping(const YAML::Node& n, int depth) {
    json out = json::object();
    std::vector<YAML::Node> merges;
    for (auto it = n.begin(); it != n.end(); ++it) {
      // Copies: the iterator's pair is a temporary (Node copies share the node).
      const YAML::Node k = it->first;
      const YAML::Node v = it->second;
      std::string key = key_text(k);
      if (key == "<<" && k.Tag() == "?") {
        merges.push_back(v);
        continue;
      }
      // yaml-cpp keeps both entries of a repeated key; JSON would silently keep one.
      if (out.contains(key)) fail_at(k, "duplicate key \"{}\"", key);
      out[key] = convert(v, depth + 1);
    }
    // YAML merge keys: explicit keys win, then earlier merged maps over later ones.
    for (const YAML::Node& m : merges) {
      std::vector<YAML::Node> maps;
      if (m.IsMap()) {
        maps.push_back(m);
      } else if (m.IsSequence()) {
        for (auto it = m.begin(); it != m.end(); ++it) maps.push_back(*it);
      } else {
        fail_at(m, "merge key \"<<\" needs a map or a list of maps");
      }
      for (const YAML::Node& src : maps) {
        if (!src.IsMap()) fail_at(src, "merge key \"<<\" needs a map or a list of maps");
        json merged = convert(src, depth + 1);
        for (auto& [key, value] : merged.items()) {
          if (!out.contains(key)) out[key] = value;
        }
      }
    }
    return out;
  }

  const std::string& source_;
  int first_line_ = 0;
  size_t nodes_ = 0;
};

std::string where_prefix(const std::string& source, int index) {
  return index > 0 ? fmt::format("{} document {}", source, index) : source;
}

std::string required_top_string(const json& body, const char* key, const std::string& where) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) fail("{}: missing required field \"{}\"", where, key);
  if (!it->is_string()) fail("{}: {}: must be a string, got {}", where, key, describe_value(*it));
  if (it->get_ref<const std::string&>().empty()) fail("{}: {}: must not be empty", where, key);
  return it->get<std::string>();
}

Document make_document(json body, std::string source, int index) {
  std::string where = where_prefix(source, index);
  if (!body.is_object()) {
    fail("{}: must be a map with apiVersion and kind, got {}", where, describe_value(body));
  }
  Document d;
  d.api_version = required_top_string(body, "apiVersion", where);
  d.kind = required_top_string(body, "kind", where);
  d.source = std::move(source);
  d.index = index;
  d.body = std::move(body);
  return d;
}

const json* metadata_string(const json& body, const char* key) {
  auto meta = body.find("metadata");
  if (meta == body.end() || !meta->is_object()) return nullptr;
  auto it = meta->find(key);
  if (it == meta->end() || !it->is_string()) return nullptr;
  return &*it;
}

}  // namespace

std::vector<Source> read_sources(const std::string& path) {
  if (path == "-") {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) fail("cannot read <stdin>");
    return {Source{"<stdin>", std::move(text)}};
  }
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {Source{path, read_file(path)}};

  std::vector<std::string> names;
  fs::directory_iterator it(path, ec);
  if (ec) fail("cannot read directory {}: {}", path, ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    // is_directory follows symlinks, so a link to a file counts as a file.
    if (is_manifest_file_name(name) && !fs::is_directory(it->path(), ec)) names.push_back(it->path().string());
  }
  if (ec) fail("cannot read directory {}: {}", path, ec.message());
  if (names.empty()) fail("{}: no *.yaml, *.yml or *.json files in directory", path);
  std::sort(names.begin(), names.end());
  std::vector<Source> sources;
  for (const std::string& name : names) sources.push_back(Source{name, read_file(name)});
  return sources;
}

std::string Document::name() const {
  const json* n = metadata_string(body, "name");
  return n != nullptr ? n->get<std::string>() : "";
}

std::string Document::ns() const {
  if (!is_namespaced_kind(kind)) return "";
  const json* n = metadata_string(body, "namespace");
  if (n == nullptr || n->get_ref<const std::string&>().empty()) return "default";
  return n->get<std::string>();
}

std::string Document::describe() const {
  std::string out = where_prefix(source, index);
  if (kind.empty()) return out;
  std::string n = name();
  if (n.empty()) return fmt::format("{} ({})", out, kind);
  std::string space = ns();
  if (space.empty()) return fmt::format("{} ({} {})", out, kind, n);
  return fmt::format("{} ({} {}/{})", out, kind, space, n);
}

std::vector<Document> parse_documents(const Source& s) {
  if (size_t bad = invalid_utf8_at(s.text); bad != std::string_view::npos) {
    fail("{}: line {}: not valid UTF-8", s.name, line_of_offset(s.text, bad));
  }
  // One document at a time when the stream allows it (see yaml_stream.h). Errors come out as
  // when the stream is parsed whole: a YAML syntax error anywhere is reported by the whole-stream
  // parse below, and only without one the first document's own error.
  if (auto chunks = split_yaml_stream(s.text)) {
    std::vector<Document> docs;
    std::optional<Error> first_error;
    int index = 0;
    try {
      for (const YamlChunk& chunk : *chunks) {
        for (const YAML::Node& node : YAML::LoadAll(std::string(chunk.text))) {
          ++index;
          if (node.IsNull() || first_error) continue;
          try {
            Converter converter(s.name, chunk.first_line);
            docs.push_back(make_document(converter.convert(node, 0), s.name, index));
          } catch (const Error& e) {
            first_error = e;
            docs.clear();
          }
        }
      }
      if (first_error) throw *first_error;
      return docs;
    } catch (const YAML::Exception&) {
    }
  }
  std::vector<YAML::Node> nodes;
  try {
    nodes = YAML::LoadAll(s.text);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) fail("{}: YAML syntax error: {}", s.name, e.msg);
    fail("{}: line {}, column {}: YAML syntax error: {}", s.name, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
  std::vector<Document> docs;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].IsNull()) continue;
    Converter converter(s.name, 0);
    json body = converter.convert(nodes[i], 0);
    docs.push_back(make_document(std::move(body), s.name, static_cast<int>(i + 1)));
  }
  return docs;
}

Document document_from_json(nlohmann::json body, std::string source) {
  return make_document(std::move(body), std::move(source), 0);
}

}  // namespace pilus::manifest
