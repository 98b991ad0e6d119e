// The request target as the L7 proxy judges it and forwards it, normalized as
// Cilium's Envoy does (RFC 3986): percent-encoded unreserved characters
// decoded (other escapes kept, hex upper-cased), repeated slashes merged, dot
// segments removed. What cannot be normalized without guessing how the server
// reads it is refused (400): an encoded '/' or '\' ("%2F", "%5C"), a
// backslash, a fragment, a bad escape, or a dot segment carrying path
// parameters ("..;", ".;x": Java servers strip ";..." and would climb, other
// servers would not). The query is kept as sent. The proxy forwards exactly
// the normalized target, so what was judged is what the server receives.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pilus::proxy {

struct NormalizedTarget {
  std::string target;     // origin-form "/path?query" (or "*"), as matched and forwarded
  std::string authority;  // the host of an absolute-form target ("http://host/..."), else empty
};

// The normalized path ("/a/b"), or nullopt with `why` set when it must be refused.
std::optional<std::string> normalize_path(std::string_view path, std::string* why = nullptr);

// Origin-form, absolute-form (http only) and "*"; anything else is refused.
std::optional<NormalizedTarget> normalize_target(std::string_view target, std::string* why = nullptr);

// A Host header value (RFC 9110: uri-host [":" port]) that can stand in a URL as it is.
bool valid_host(std::string_view host);

}  // namespace pilus::proxy
