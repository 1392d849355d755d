// RegistryClient: the distribution (registry v2) API over libcurl, for one repository.
//
// TLS uses the system CA store plus an optional extra CA file. Plain HTTP (and unverified TLS) is allowed
// only for loopback registries and registries the operator lists as insecure. Authentication follows the
// registry's WWW-Authenticate challenge: Basic with the credentials, or Bearer with a token fetched from the
// realm for the scope "repository:<name>:pull". Transient failures (connection errors, timeouts, 5xx, 429)
// are retried with exponential back-off and jitter; 401/403/404 are reported at once with what was refused.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/store.h"

namespace nfc::image {

struct RegistryOptions {
  std::optional<RegistryAuth> auth;  // explicit credentials; otherwise looked up in docker_config
  std::string docker_config;         // path; empty: the default locations
  std::vector<std::string> insecure_registries;
  std::string ca_file;
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct FetchedManifest {
  std::string body;
  std::string content_type;
  std::string digest;  // sha256 of body (verified against the requested digest when one was given)
};

class RegistryClient {
 public:
  RegistryClient(Reference ref, RegistryOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // GET /v2/<name>/manifests/<tag or digest>.
  Result<FetchedManifest> GetManifest(const std::string& tag_or_digest);
  // GET /v2/<name>/blobs/<digest> into fd (truncated first on every attempt), verifying size and digest while
  // streaming. on_bytes gets the running byte count of the current attempt.
  Status GetBlob(const Descriptor& blob, int fd, const std::function<void(uint64_t)>& on_bytes);

 private:
  struct Response;
  using Sink = std::function<Status(const char* data, size_t len)>;
  // One logical request with auth and retries. reset is called before each attempt (to rewind the sink).
  Result<long> Request(const std::string& path, const std::string& accept, const Sink& sink,
                       const std::function<Status()>& reset, Response* response, const std::string& what);
  Result<long> Perform(const std::string& url, const std::string& accept, const Sink& sink,
                       Response* response, int* curl_code, std::string* curl_error);
  Status Authenticate(const std::string& challenge, const std::string& what);
  Status LoadCredentials();
  bool PlainHttpAllowed() const;

  Reference ref_;
  RegistryOptions options_;
  std::string scheme_ = "https";
  std::string auth_header_;
  std::optional<RegistryAuth> creds_;
  bool creds_loaded_ = false;
};

}  // namespace nfc::image
