#include "policy/proxy_visibility.h"

#include <algorithm>
#include <charconv>

#include "common/error.h"

namespace pilus::policy {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t at; (at = s.find(sep, start)) != std::string_view::npos; start = at + 1) out.push_back(s.substr(start, at - start));
  out.push_back(s.substr(start));
  return out;
}

}  // namespace

std::vector<VisibilityPort> parse_proxy_visibility(std::string_view text) {
  std::vector<VisibilityPort> out;
  for (std::string_view raw : split(text, ',')) {
    std::string_view item = trim(raw);
    if (item.size() < 2 || item.front() != '<' || item.back() != '>')
      fail("\"{}\": each entry is written <Direction/Port/Protocol/L7Protocol>, e.g. <Ingress/80/TCP/HTTP>", item);
    auto parts = split(item.substr(1, item.size() - 2), '/');
    if (parts.size() != 4) fail("\"{}\": expected <Direction/Port/Protocol/L7Protocol>", item);
    VisibilityPort v;
    if (parts[0] == "Ingress") {
      v.direction = Direction::kIngress;
    } else if (parts[0] == "Egress") {
      v.direction = Direction::kEgress;
    } else {
      fail("\"{}\": direction must be Ingress or Egress, got \"{}\"", item, parts[0]);
    }
    unsigned port = 0;
    auto [end, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), port);
    if (ec != std::errc() || end != parts[1].data() + parts[1].size() || port < 1 || port > 65535)
      fail("\"{}\": port must be a number between 1 and 65535, got \"{}\"", item, parts[1]);
    v.port = static_cast<uint16_t>(port);
    if (parts[2] != "TCP") fail("\"{}\": pilus's proxy carries HTTP over TCP only, got protocol \"{}\"", item, parts[2]);
    if (parts[3] != "HTTP")
      fail("\"{}\": pilus's proxy implements HTTP only (not {}), so only <.../TCP/HTTP> gives visibility", item, parts[3]);
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

}  // namespace pilus::policy
