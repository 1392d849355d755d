// RegistryClient: the distribution (registry v2) API over libcurl, for one repository.
//
// TLS uses the system CA store plus an optional extra CA file. Plain HTTP (and unverified TLS) is allowed
// only for loopback registries and registries the operator lists as insecure. Authentication follows the
// registry's WWW-Authenticate challenge: Basic with the credentials, or Bearer with a token fetched from the
// realm for the scope "repository:<name>:pull"; a 401 later in a pull (an expired token) re-authenticates
// once for that request. Transient failures (connection errors, stalled or cut transfers, a Content-Length
// that disagrees with the manifest, 5xx, 429) are retried with exponential back-off and jitter, honouring
// Retry-After, within the attempt limit and the deadline; what gives up keeps a transient code (kUnavailable,
// kTimeout, kResourceExhausted for 429). Content that does not match its digest is kDataLoss and is not
// retried. 401/403/404 are reported at once with what was refused.
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
  // The docker driver's auth_soft_fail: credentials that cannot be read (a broken Docker config, a failing
  // helper) or that the registry refuses are dropped with a warning, and the pull goes on anonymously.
  bool auth_soft_fail = false;
  std::vector<std::string> insecure_registries;
  std::string ca_file;
  RetryPolicy retry;
  std::chrono::seconds activity_timeout{120};  // a transfer with no byte for this long is abandoned
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::string deadline_name = "the pull's deadline";  // names it in errors: "image_pull_timeout (10 m)"
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
  // streaming. on_bytes gets the running byte count of the current attempt, after the bytes are written;
  // a new attempt reports 0 before it truncates the file.
  Status GetBlob(const Descriptor& blob, int fd, const std::function<void(uint64_t)>& on_bytes);

 private:
  struct Response;
  struct Problem;
  struct Outcome;
  using Sink = std::function<Status(const char* data, size_t len)>;
  // One logical request: what to GET and where the body goes.
  struct Call {
    std::string path;
    std::string accept;
    std::string what;  // "blob sha256:...", for errors
    Sink sink;
    std::function<Status()> reset;  // before each attempt: rewinds what the sink wrote
    int64_t expected_length = -1;   // a 200 whose Content-Length differs is a broken transfer (retried)
    std::function<std::string()> incomplete;  // after a 200: why the body is incomplete, "" when it is not
  };
  // The call with auth and retries; returns the final HTTP status.
  Result<long> Request(const Call& call, Response* response);
  // One attempt: done, again at once (after authenticating or a TLS downgrade), or a transient problem.
  Result<Outcome> Attempt(const Call& call, Response* response, bool* authenticated);
  Result<Outcome> CurlFailure(const Call& call, const std::string& url, int code, const std::string& err);
  Result<long> Perform(const std::string& url, const std::string& accept, const Sink& sink,
                       Response* response, int* curl_code, std::string* curl_error);
  static size_t OnHeader(char* buf, size_t size, size_t n, void* response);
  static size_t OnBody(char* buf, size_t size, size_t n, void* response);
  void SetTransferOptions(void* curl, const std::string& url) const;
  bool PastDeadline() const;
  Error GiveUp(const Call& call, int attempts, const Problem& last, const std::string& why) const;
  Status Authenticate(const std::string& challenge, const std::string& what);
  Status LoadCredentials();
  bool PlainHttpAllowed() const;

  Reference ref_;
  RegistryOptions options_;
  std::string scheme_ = "https";
  std::string auth_header_;
  std::optional<RegistryAuth> creds_;
  bool creds_loaded_ = false;
  // auth_soft_fail: forgets the credentials (once) so the next attempt is anonymous; false when there were
  // none to drop or soft failing is off.
  bool DropCredentialsSoftly(const std::string& why);
};

}  // namespace nfc::image
