#include "proxy/http_target.h"

#include <cctype>
#include <vector>

namespace pilus::proxy {

namespace {

bool unreserved(unsigned char c) { return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~'; }
bool sub_delim(unsigned char c) { return std::string_view("!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::nullopt_t refuse(std::string* why, const char* text) {
  if (why) *why = text;
  return std::nullopt;
}

// "." or "..", once the segment's path parameters (";...") are cut off.
bool dot_segment_with_parameters(std::string_view segment) {
  size_t semi = segment.find(';');
  if (semi == std::string_view::npos) return false;
  std::string_view name = segment.substr(0, semi);
  return name == "." || name == "..";
}

}  // namespace

std::optional<std::string> normalize_path(std::string_view path, std::string* why) {
  if (path.empty() || path.front() != '/') return refuse(why, "the path does not start with '/'");
  // Decode what RFC 3986 says is equivalent when decoded; refuse what servers read differently.
  std::string decoded;
  decoded.reserve(path.size());
  for (size_t i = 0; i < path.size(); i++) {
    char c = path[i];
    if (c == '\\') return refuse(why, "a backslash in the path");
    if (c == '#') return refuse(why, "a fragment in the request target");
    if (c != '%') {
      decoded += c;
      continue;
    }
    int hi = i + 2 < path.size() ? hex_value(path[i + 1]) : -1;
    int lo = hi >= 0 ? hex_value(path[i + 2]) : -1;
    if (hi < 0 || lo < 0) return refuse(why, "a malformed percent-escape in the path");
    unsigned char v = static_cast<unsigned char>(hi * 16 + lo);
    if (v == '/' || v == '\\') return refuse(why, "an encoded '/' or '\\' in the path");
    if (unreserved(v)) {
      decoded += static_cast<char>(v);
    } else {
      static const char kHex[] = "0123456789ABCDEF";
      decoded += '%';
      decoded += kHex[v >> 4];
      decoded += kHex[v & 15];
    }
    i += 2;
  }
  // Merge slashes and remove dot segments in one pass over the segments.
  std::vector<std::string_view> out;
  bool trailing_slash = false;
  std::string_view rest = std::string_view(decoded).substr(1);
  for (;;) {
    size_t slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    bool last = slash == std::string_view::npos;
    if (dot_segment_with_parameters(segment)) return refuse(why, "a dot segment with path parameters (\"..;\")");
    if (segment.empty() || segment == ".") {
      if (last) trailing_slash = true;
    } else if (segment == "..") {
      if (!out.empty()) out.pop_back();
      if (last) trailing_slash = true;
    } else {
      out.push_back(segment);
      if (last) trailing_slash = false;
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
  }
  std::string normalized;
  for (std::string_view s : out) {
    normalized += '/';
    normalized += s;
  }
  if (normalized.empty() || trailing_slash) normalized += '/';
  return normalized;
}

std::optional<NormalizedTarget> normalize_target(std::string_view target, std::string* why) {
  NormalizedTarget out;
  if (target == "*") {
    out.target = "*";
    return out;
  }
  if (target.size() >= 7) {
    std::string scheme(target.substr(0, 7));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "http://") {
      std::string_view rest = target.substr(7);
      size_t end = rest.find_first_of("/?#");
      out.authority = std::string(rest.substr(0, end));
      if (out.authority.empty() || !valid_host(out.authority)) return refuse(why, "an invalid host in the request target");
      target = end == std::string_view::npos ? std::string_view("/") : rest.substr(end);
      if (target.front() == '?') return refuse(why, "a request target without a path");
    }
  }
  if (target.empty() || target.front() != '/') return refuse(why, "an unsupported request target form");
  size_t q = target.find('?');
  auto path = normalize_path(target.substr(0, q), why);
  if (!path) return std::nullopt;
  out.target = *path;
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q);
    if (query.find('#') != std::string_view::npos) return refuse(why, "a fragment in the request target");
    out.target += query;
  }
  return out;
}

bool valid_host(std::string_view host) {
  if (host.empty()) return false;
  std::string_view name = host;
  if (host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    for (char c : host.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    name = {};
    host.remove_prefix(close + 1);
    if (!host.empty() && host.front() != ':') return false;
  } else {
    size_t colon = host.find(':');
    name = host.substr(0, colon);
    host = colon == std::string_view::npos ? std::string_view() : host.substr(colon);
    if (name.empty()) return false;
  }
  for (char c : name)
    if (!unreserved(static_cast<unsigned char>(c)) && !sub_delim(static_cast<unsigned char>(c)) && c != '%') return false;
  if (!host.empty()) {  // ":port"
    host.remove_prefix(1);
    if (host.size() > 5) return false;
    for (char c : host)
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace pilus::proxy
