// The parts of a parsed request that L7 rules look at (see http_rules.h).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "proxy/http_rules.h"

namespace pilus::proxy {

// The view points into `req`, which must outlive it.
inline HttpRequestView request_view(const boost::beast::http::request<boost::beast::http::string_body>& req) {
  HttpRequestView v;
  v.method = std::string_view(req.method_string().data(), req.method_string().size());
  v.path = std::string_view(req.target().data(), req.target().size());
  auto host = req[boost::beast::http::field::host];
  std::string_view h(host.data(), host.size());
  // "name:port" and "[v6]:port": rules name the host only.
  if (size_t colon = h.rfind(':'); colon != std::string_view::npos && h.find(']', colon) == std::string_view::npos)
    h = h.substr(0, colon);
  v.host = h;
  for (const auto& field : req)
    v.headers.emplace_back(std::string_view(field.name_string().data(), field.name_string().size()),
                           std::string_view(field.value().data(), field.value().size()));
  return v;
}

}  // namespace pilus::proxy
