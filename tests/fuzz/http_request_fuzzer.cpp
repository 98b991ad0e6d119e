// libFuzzer target for the proxy's request path: bytes from a client go through
// Beast's request parser with the proxy's limits, then the view the L7 rules
// read and the rule check itself, request after request as on a kept-alive
// connection. Build: cmake -DPILUS_FUZZ=ON, then `cmake --build build --target
// http_request_fuzzer`; run: build/fuzz/http_request_fuzzer -max_total_time=60 tests/fuzz/corpus
// (seeds there: a kept-alive chunked exchange, and the split chunk header that trips
// Boost 1.74's over-strict assertion, hence -DNDEBUG in CMakeLists.txt).
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>

#include "proxy/http_proxy.h"
#include "proxy/http_request_view.h"
#include "proxy/http_rules.h"

namespace http = boost::beast::http;

static const pilus::proxy::HttpRuleSet& rules() {
  static const pilus::proxy::HttpRuleSet set({
      {"GET", "/api/.*", "", {}},
      {"POST|PUT", "/api/v[0-9]+/items/[a-z0-9-]+", "api\\.example\\.com", {"X-Token: secret", "X-Trace"}},
  });
  return set;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const pilus::proxy::ProxyConfig limits;
  boost::asio::const_buffer input(data, size);
  for (int request = 0; request < 16 && input.size() > 0; request++) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(limits.header_limit));
    parser.body_limit(limits.body_limit);
    parser.eager(true);
    boost::beast::error_code ec;
    // Beast consumes nothing of an incomplete header, as when the proxy's buffer
    // holds part of one: it is fed everything left each time, as the proxy does.
    while (!parser.is_done() && input.size() > 0) {
      size_t n = parser.put(input, ec);
      if (ec == http::error::need_more && n == 0) return 0;  // the input ends mid-message
      if (ec && ec != http::error::need_more) return 0;    // malformed: 400/431/413 and close
      ec = {};
      input += n;
    }
    if (!parser.is_header_done()) return 0;
    const auto& req = parser.get();
    pilus::proxy::HttpRequestView view = pilus::proxy::request_view(req);
    volatile bool allowed = rules().matches(view);
    (void)allowed;
  }
  return 0;
}
