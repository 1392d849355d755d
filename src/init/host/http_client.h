// A minimal HTTP/1.1 client for the cloud metadata service (metadata.h), written for nomad-init.
//
// Why not libcurl: nomad-init is one static binary (it is PID 1 of the initramfs and of the system
// partition); Debian's libcurl does not link statically without also linking static
// OpenSSL/nghttp2/libidn2/…, none of which a plain-HTTP request to 169.254.169.254 needs. What is needed is
// small: one request per connection
// (`Connection: close`), IPv4 literal address, no redirects, no TLS, no proxies, no keep-alive. Small enough
// to be strict: every size is bounded and the response parser is a pure function with a fuzz target
// (tests/fuzz/metadata_http_fuzz.cc) because its bytes come from the network.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace nfc::init::host {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  std::string body;
};

// Status line and headers at most this long together; at most this many header lines.
constexpr size_t kHttpHeaderLimit = 16 << 10;
constexpr size_t kHttpHeaderCount = 64;

// Parses the bytes received so far of one response. nullopt: incomplete, read more (when `eof` is true the
// bytes are all there is: a body without Content-Length or chunked ends at EOF, anything else short is an
// error). Errors: malformed status line/headers/chunks, a body over `body_limit`, headers over the limits.
Result<std::optional<HttpResponse>> ParseHttpResponse(std::string_view raw, size_t body_limit, bool eof);

// The first value of header `name` (lower case), or nullopt.
std::optional<std::string> HttpHeader(const HttpResponse& r, std::string_view name);

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // origin-form, e.g. /latest/user-data
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpTarget {
  std::string address = "169.254.169.254";  // IPv4 literal: no DNS here
  uint16_t port = 80;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds total_timeout{3000};  // connect + send + whole response
  size_t body_limit = 64 << 10;
};

// One request on a fresh connection. Errors: kUnavailable (connect refused/unreachable), kTimeout (connect or
// the response took too long), kInvalidArgument (bad response, or bigger than target.body_limit).
Result<HttpResponse> HttpDo(const HttpTarget& target, const HttpRequest& request);

}  // namespace nfc::init::host
