// HttpOverUnix: a small HTTP/1.1 client for one peer on a unix stream socket (Firecracker's API socket).
//
// Why our own and not libcurl: the per-task shim (nomad-fc-shim) links this client and must stay under 2 MiB
// RSS, which needs a fully static binary (no shared-library file pages). Debian 12 ships no static archives
// for libcurl's dependencies (nghttp2, rtmp, ssh2, psl, gssapi_krb5, ldap), so libcurl cannot be linked
// statically from Debian packages. What Firecracker's API needs is narrow: one local peer, a few JSON
// requests, no TLS, no proxies, no redirects, no cookies, no auth. That fits in this file; the plugin's
// registry client keeps libcurl (src/image).
//
// What it does:
//  - one connection, kept alive across requests; a reused connection the server has since closed (Firecracker
//    closes idle ones) is replaced transparently: when the request fails before any byte of the answer
//    arrived, it is sent once more on a fresh connection. A fresh connection is never retried.
//  - one deadline per request (connect + send + receive), enforced with poll(); EINTR-safe; MSG_NOSIGNAL.
//  - answers framed by Content-Length, by chunked transfer coding, or by the server closing (no length);
//    1xx interim answers are skipped; 204/304 and HEAD answers have no body. "Connection: close" (or HTTP/1.0
//    without keep-alive) closes the connection after the answer.
//  - malformed status lines, header lines, lengths and chunk sizes are errors naming what was wrong; a body
//  cut
//    short is an error, never a short body.
//  - never sends "Expect: 100-continue" (it costs Firecracker a round trip).
//
// Not thread-safe: one caller at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::vmm::firecracker {

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed
  std::string body;
  bool keep_alive = true;  // the connection may carry another request

  // The first header named `name` (lower case), or nullptr.
  const std::string* Header(std::string_view name) const;
};

// Incremental response parser: bytes may arrive split anywhere. Exposed for tests.
class HttpResponseParser {
 public:
  // Limits on what a peer may make us buffer.
  static constexpr size_t kMaxHeaderBytes = size_t{64} * 1024;
  static constexpr size_t kMaxBodyBytes = size_t{16} * 1024 * 1024;

  explicit HttpResponseParser(bool head_request = false) : head_request_(head_request) {}

  // Consumes bytes from `data`; returns how many were used (less than data.size() only once complete: the
  // rest belongs to whatever follows). Errors name the malformed element.
  Result<size_t> Feed(std::string_view data);
  // The peer closed the connection: completes a body framed by the close, otherwise errors (truncation).
  Status FeedEof();

  bool complete() const { return state_ == State::kDone; }
  bool started() const { return bytes_seen_ > 0; }
  HttpResponse& response() { return response_; }

 private:
  enum class State {
    kStatusLine,
    kHeaders,
    kBodyLength,
    kBodyUntilClose,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kDone
  };
  Status ParseStatusLine(std::string_view line);
  Status ParseHeaderLine(std::string_view line);
  Status HeadersDone();
  Status ParseChunkSize(std::string_view line);
  // Takes one line (without its line ending) from line_ + data; returns false when more data is needed.
  Result<bool> TakeLine(std::string_view data, size_t* used, std::string* line);

  bool head_request_;
  State state_ = State::kStatusLine;
  HttpResponse response_;
  std::string line_;  // a line being assembled across Feed calls
  size_t header_bytes_ = 0;
  size_t bytes_seen_ = 0;
  size_t remaining_ = 0;  // body bytes (kBodyLength) or chunk bytes (kChunkData) still expected
  size_t content_length_ = 0;
  bool have_content_length_ = false;
  bool chunked_ = false;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  bool http10_ = false;
};

class HttpOverUnix {
 public:
  explicit HttpOverUnix(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  // One request. `body` empty and `content_type` empty means no body (a PUT/PATCH/POST still says
  // Content-Length: 0). Transport failures are kUnavailable, a passed deadline kTimeout, a malformed answer
  // kDataLoss; `method` or `target` with spaces or control characters is kInvalidArgument.
  Result<HttpResponse> RoundTrip(std::string_view method, std::string_view target,
                                 std::string_view content_type, std::string_view body,
                                 std::chrono::steady_clock::time_point deadline);

  // Drops the kept-alive connection (the next request connects again).
  void Close() { fd_.Reset(); }
  bool connected() const { return fd_.valid(); }
  // Connections opened so far (for tests and diagnostics).
  int connections_opened() const { return connections_opened_; }

 private:
  Status Connect(std::chrono::steady_clock::time_point deadline);
  // Sends the request and reads one answer on the current connection. *answer_started tells whether any byte
  // of the answer arrived (a request that failed before that may be retried on a reused connection).
  Result<HttpResponse> Exchange(std::string_view request, bool head_request,
                                std::chrono::steady_clock::time_point deadline, bool* answer_started);
  // True when a kept-alive connection is still usable (no EOF, error or stray bytes pending).
  bool IdleConnectionUsable();

  std::string socket_path_;
  UniqueFd fd_;
  int connections_opened_ = 0;
};

}  // namespace nfc::vmm::firecracker
