// ApiClient: Firecracker's HTTP/1.1 API over its unix socket, through our HttpOverUnix (http_over_unix.h says
// why not libcurl: the static per-task shim links this).
//
// One keep-alive connection is reused across calls (Firecracker answers "Connection: keep-alive"; it serves
// at most 10 connections); one Firecracker closed while idle is replaced transparently. Calls are synchronous
// in Firecracker too: a 204 means the change was applied. Error answers ({"fault_message": "..."}) come back
// verbatim inside the Error, prefixed with the request.
//
// Not thread-safe: one caller at a time (FirecrackerVmm holds a mutex around it).
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"
#include "vmm/firecracker/http_over_unix.h"

namespace nfc::vmm::firecracker {

struct ApiResponse {
  long status = 0;
  std::string body;
};

// A Firecracker version as reported by GET / ("vmm_version") or GET /version ("firecracker_version").
struct FirecrackerVersion {
  int major = 0, minor = 0, patch = 0;
  std::string text;
  static Result<FirecrackerVersion> Parse(std::string_view text);  // "1.16.1", "1.17.0-dev", "v1.7.0"
  bool AtLeast(int maj, int min) const { return major > maj || (major == maj && minor >= min); }
};

class ApiClient {
 public:
  explicit ApiClient(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~ApiClient() = default;
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  const std::string& socket_path() const { return socket_path_; }

  // Sends one request; `body` empty means no body (GET). Transport failures are kUnavailable, a request not
  // answered within the timeout kTimeout, a malformed answer kDataLoss.
  Result<ApiResponse> Send(std::string_view method, std::string_view path, std::string_view body);

  // PUT with a JSON body that must be answered 204; other answers become an error carrying
  // Firecracker's fault_message verbatim: "PUT /drives/rootfs: Firecracker answered 400: <fault_message>".
  Status Put(std::string_view path, const nlohmann::json& body) { return Expect204("PUT", path, body); }
  Status Patch(std::string_view path, const nlohmann::json& body) { return Expect204("PATCH", path, body); }
  // GET answered 200 with a JSON body.
  Result<nlohmann::json> Get(std::string_view path);

 private:
  Status Expect204(std::string_view method, std::string_view path, const nlohmann::json& body);
  std::string socket_path_;
  std::chrono::milliseconds timeout_;
  HttpOverUnix http_;  // keeps the connection alive between calls
};

// Extracts fault_message from an error body, or returns the body itself when it is not the documented shape.
std::string FaultMessage(std::string_view body);

}  // namespace nfc::vmm::firecracker
