#include "image/registry_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "base/log.h"
#include "image/credentials.h"
#include "image/registry_http.h"
#include "image/sha256.h"

namespace nfc::image {
namespace {

using json = nlohmann::json;
using namespace registry_http;
constexpr size_t kMaxManifestBytes = 4 << 20;  // the distribution spec's limit registries enforce
constexpr size_t kMaxErrorBody = 8 << 10;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Status WriteAllTo(int fd, const char* d, size_t len, const std::string& what) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::write(fd, d + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("write " + what);
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

std::string SecondsText(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000);
  return d < std::chrono::seconds(10) ? buf : std::to_string(d.count() / 1000) + " s";
}

}  // namespace

struct RegistryClient::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercased names, of the final response
  std::string error_body;
  const Sink* sink = nullptr;
  std::optional<Error> sink_error;
  int64_t expected_length = -1;
  std::string length_problem;  // set when a 200's Content-Length disagrees with expected_length
  std::chrono::steady_clock::time_point last_byte = std::chrono::steady_clock::now();
  std::chrono::milliseconds activity_timeout{0};
  bool stalled = false;  // aborted: no byte for activity_timeout
};

// What went wrong in one attempt that a later attempt may not meet.
struct RegistryClient::Problem {
  ErrorCode code = ErrorCode::kUnavailable;  // reported when the retries run out
  std::string text;
  std::chrono::milliseconds retry_after{0};  // the registry's Retry-After
};

struct RegistryClient::Outcome {
  enum class Kind { kDone, kAgain, kTransient };
  Kind kind = Kind::kDone;
  long status = 0;
  Problem problem;
  static Outcome Done(long status) { return {Kind::kDone, status, {}}; }
  static Outcome Again() { return {Kind::kAgain, 0, {}}; }
  static Outcome Transient(ErrorCode code, std::string text,
                           std::chrono::milliseconds retry_after = std::chrono::milliseconds(0)) {
    return {Kind::kTransient, 0, {code, std::move(text), retry_after}};
  }
};

RegistryClient::RegistryClient(Reference ref, RegistryOptions options)
    : ref_(std::move(ref)), options_(std::move(options)) {
  GlobalInit();
}

RegistryClient::~RegistryClient() = default;

bool RegistryClient::PlainHttpAllowed() const {
  if (IsLoopbackHost(ref_.registry)) return true;
  return std::find(options_.insecure_registries.begin(), options_.insecure_registries.end(), ref_.registry) !=
         options_.insecure_registries.end();
}

Status RegistryClient::LoadCredentials() {
  if (creds_loaded_) return Ok();
  creds_loaded_ = true;
  if (options_.auth) {
    creds_ = options_.auth;
    return Ok();
  }
  auto found = LookupDockerCredentials(DockerConfigPath(options_.docker_config), ref_.registry);
  if (!found.ok() && options_.auth_soft_fail) {
    log::Warn("auth_soft_fail: pulling without credentials",
              {{"registry", ref_.registry}, {"error", found.error().message()}});
    return Ok();
  }
  if (!found.ok()) return std::move(found).error();
  creds_ = *found;
  return Ok();
}

bool RegistryClient::DropCredentialsSoftly(const std::string& why) {
  if (!options_.auth_soft_fail || !creds_) return false;
  log::Warn("auth_soft_fail: the registry refused the credentials; pulling without them",
            {{"registry", ref_.registry}, {"user", creds_->username}, {"error", why}});
  creds_.reset();
  auth_header_.clear();
  return true;
}

bool RegistryClient::PastDeadline() const {
  return std::chrono::steady_clock::now() >= options_.deadline;
}

// Options that do not depend on the response handling: redirects, protocols, timeouts and TLS trust.
void RegistryClient::SetTransferOptions(void* curl, const std::string& url) const {
  CURL* c = curl;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // blobs often redirect to object storage
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "nomad-driver-firecracker");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  if (options_.deadline != std::chrono::steady_clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(options_.deadline -
                                                                      std::chrono::steady_clock::now());
    // A little past the deadline, so that a transfer curl ends for it is seen as past it (PastDeadline).
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, left.count() + 50)));
  }
  if (!options_.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");  // keep the system store as well
  }
  bool insecure = std::find(options_.insecure_registries.begin(), options_.insecure_registries.end(),
                            ref_.registry) != options_.insecure_registries.end();
  if (insecure && url.rfind("https://" + ref_.ApiHost(), 0) == 0) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

// Collects the headers of the final response; a 200 whose Content-Length disagrees with the expected length
// is aborted before its body.
size_t RegistryClient::OnHeader(char* buf, size_t size, size_t n, void* priv) {
  auto* resp = static_cast<Response*>(priv);
  resp->last_byte = std::chrono::steady_clock::now();
  std::string line(buf, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect or 100-continue)
    resp->headers.clear();
    resp->error_body.clear();
    size_t sp = line.find(' ');
    resp->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
    return size * n;
  }
  if (line == "\r\n" || line == "\n") {  // end of this response's headers
    auto cl = resp->headers.find("content-length");
    if (resp->status == 200 && resp->expected_length >= 0 && cl != resp->headers.end() &&
        cl->second != std::to_string(resp->expected_length)) {
      resp->length_problem = "the registry sent Content-Length " + cl->second + " for content of " +
                             std::to_string(resp->expected_length) + " bytes";
      return 0;  // aborts the transfer before the body
    }
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.pop_back();
    resp->headers[Lower(line.substr(0, colon))] = value;
  }
  return size * n;
}

// The body of a 200 goes to the sink; that of an error response is kept (bounded) for the message.
size_t RegistryClient::OnBody(char* buf, size_t size, size_t n, void* priv) {
  auto* resp = static_cast<Response*>(priv);
  resp->last_byte = std::chrono::steady_clock::now();
  size_t len = size * n;
  if (resp->status != 200) {
    if (resp->error_body.size() < kMaxErrorBody) resp->error_body.append(buf, std::min(len, kMaxErrorBody));
    return len;
  }
  Status st = (*resp->sink)(buf, len);
  if (!st.ok()) {
    resp->sink_error = std::move(st).error();
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  return len;
}

Result<long> RegistryClient::Perform(const std::string& url, const std::string& accept, const Sink& sink,
                                     Response* r, int* curl_code, std::string* curl_error) {
  CURL* c = curl_easy_init();
  if (!c) return Error::Internal("curl_easy_init failed");
  struct curl_slist* headers = nullptr;
  if (!accept.empty()) headers = curl_slist_append(headers, ("Accept: " + accept).c_str());
  if (!auth_header_.empty()) headers = curl_slist_append(headers, ("Authorization: " + auth_header_).c_str());
  char errbuf[CURL_ERROR_SIZE] = {0};
  r->sink = &sink;
  // Our own stall watchdog rather than CURLOPT_LOW_SPEED_*: curl averages the speed over several seconds,
  // so a transfer that stops after a burst would only be noticed seconds after activity_timeout. libcurl
  // calls this at least about once a second while it waits.
  auto progress_cb = +[](void* priv, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
    auto* resp = static_cast<Response*>(priv);
    if (std::chrono::steady_clock::now() - resp->last_byte < resp->activity_timeout) return 0;
    resp->stalled = true;
    return 1;  // aborts the transfer with CURLE_ABORTED_BY_CALLBACK
  };
  r->activity_timeout = options_.activity_timeout;
  r->last_byte = std::chrono::steady_clock::now();
  SetTransferOptions(c, url);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &RegistryClient::OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &RegistryClient::OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  *curl_code = rc;
  *curl_error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  return r->status;
}

Status RegistryClient::Authenticate(const std::string& challenge, const std::string& what) {
  NFC_RETURN_IF_ERROR(LoadCredentials());
  auto [scheme, params] = ParseChallenge(challenge);
  if (scheme == "basic") {
    if (!creds_ || creds_->username.empty()) {
      return Error(ErrorCode::kUnauthenticated,
                   what + ": registry " + ref_.registry +
                       " requires credentials (none in the task's auth block or the "
                       "Docker config)");
    }
    auth_header_ = BasicAuthHeader(*creds_);
    return Ok();
  }
  if (scheme != "bearer") {
    return Error(ErrorCode::kUnauthenticated,
                 what + ": unsupported authentication scheme \"" + scheme + "\" from " + ref_.registry);
  }
  std::string realm = params["realm"];
  if (realm.rfind("https://", 0) != 0 && realm.rfind("http://", 0) != 0) {
    return Error(ErrorCode::kUnauthenticated, what + ": token realm \"" + realm + "\" is not an http(s) URL");
  }
  if (realm.rfind("http://", 0) == 0) {
    // Credentials must not cross the network in clear text: a plain-HTTP token server is used only where
    // plain HTTP is allowed anyway (the registry is on loopback or marked insecure) or the token server is on
    // loopback.
    std::string_view rest = std::string_view(realm).substr(7);
    std::string_view realm_host = rest.substr(0, rest.find_first_of("/?"));
    if (!PlainHttpAllowed() && !IsLoopbackHost(realm_host)) {
      return Error(ErrorCode::kUnauthenticated,
                   what + ": token realm \"" + realm +
                       "\" uses plain HTTP; refusing to send credentials there (add " + ref_.registry +
                       " to insecure_registries to allow it)");
    }
  }
  std::string scope = "repository:" + ref_.repository + ":pull";
  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
  if (!params["service"].empty()) url += "service=" + Escape(params["service"]) + "&";
  url += "scope=" + Escape(scope);
  std::string saved = auth_header_;
  auth_header_.clear();
  if (creds_ && !creds_->username.empty() && creds_->identity_token.empty()) {
    auth_header_ = BasicAuthHeader(*creds_);
  }
  std::string body;
  Sink sink = [&](const char* d, size_t len) -> Status {
    if (body.size() + len > (1 << 20)) return Error::DataLoss("token response larger than 1 MiB");
    body.append(d, len);
    return Ok();
  };
  Response r;
  int code = 0;
  std::string err;
  auto status = Perform(url, "application/json", sink, &r, &code, &err);
  auth_header_ = saved;
  if (!status.ok()) return std::move(status).error();
  if (code != CURLE_OK) {
    if (r.stalled) err = "no data for " + std::to_string(options_.activity_timeout.count()) + " s";
    return Error::Unavailable(what + ": token request to " + realm + ": " + err);
  }
  if (*status == 401 || *status == 403) {
    std::string refused = what + ": token server " + realm + " refused the credentials" +
                          (creds_ ? " for user \"" + creds_->username + "\"" : "") + " (" +
                          std::to_string(*status) + ")";
    if (DropCredentialsSoftly(refused)) return Authenticate(challenge, what);
    return Error(ErrorCode::kUnauthenticated, refused);
  }
  if (*status != 200) {
    return Error::Unavailable(what + ": token server " + realm + " answered " + std::to_string(*status) +
                              ": " + RegistryErrorText(r.error_body));
  }
  try {
    json j = json::parse(body);
    std::string token = j.value("token", "");
    if (token.empty()) token = j.value("access_token", "");
    if (token.empty()) return Error(ErrorCode::kUnauthenticated, what + ": token server returned no token");
    auth_header_ = "Bearer " + token;
  } catch (const json::exception& e) {
    return Error(ErrorCode::kUnauthenticated, what + ": token response is not JSON: " + e.what());
  }
  return Ok();
}

Result<RegistryClient::Outcome> RegistryClient::CurlFailure(const Call& call, const std::string& url,
                                                            int code, const std::string& err) {
  // A loopback or insecure registry that does not speak TLS at all gets plain HTTP (as Docker does). A
  // certificate that fails verification is never a reason to downgrade.
  if (scheme_ == "https" && PlainHttpAllowed() && code == CURLE_SSL_CONNECT_ERROR) {
    log::Info("registry does not speak TLS; using plain HTTP (loopback or insecure registry)",
              {{"registry", ref_.registry}});
    scheme_ = "http";
    return Outcome::Again();
  }
  if (code == CURLE_PEER_FAILED_VERIFICATION) {
    return Error(ErrorCode::kUnavailable, call.what + ": " + url + ": TLS certificate not trusted (" + err +
                                              "); give the registry's CA with ca_file or mark it insecure");
  }
  if (!RetryableCurlError(code)) return Error::Unavailable(call.what + ": " + url + ": " + err);
  if (code == CURLE_OPERATION_TIMEDOUT) return Outcome::Transient(ErrorCode::kTimeout, err);
  return Outcome::Transient(ErrorCode::kUnavailable, err);
}

Result<RegistryClient::Outcome> RegistryClient::Attempt(const Call& call, Response* r, bool* authenticated) {
  NFC_RETURN_IF_ERROR(call.reset());
  *r = Response{};
  r->expected_length = call.expected_length;
  int code = 0;
  std::string err;
  const std::string url = scheme_ + "://" + ref_.ApiHost() + call.path;
  NFC_ASSIGN_OR_RETURN(long status, Perform(url, call.accept, call.sink, r, &code, &err));
  if (r->sink_error) return *r->sink_error;
  if (!r->length_problem.empty()) return Outcome::Transient(ErrorCode::kUnavailable, r->length_problem);
  if (r->stalled) {
    return Outcome::Transient(
        ErrorCode::kTimeout,
        "no data for " + std::to_string(options_.activity_timeout.count()) + " s (pull_activity_timeout)");
  }
  if (code != CURLE_OK) return CurlFailure(call, url, code, err);
  if (status == 401) {
    // Once per request: the first 401 of a pull, or a token that expired since the last request.
    if (*authenticated) {
      std::string refused =
          call.what + ": " + ref_.registry + " refused the credentials" +
          (creds_ && !creds_->username.empty() ? " of user \"" + creds_->username + "\"" : "") + " (401 " +
          RegistryErrorText(r->error_body) + ")";
      if (!DropCredentialsSoftly(refused)) return Error(ErrorCode::kUnauthenticated, refused);
      *authenticated = false;
      return Outcome::Again();  // anonymously: the next 401 fetches an anonymous token
    }
    auto challenge = r->headers.find("www-authenticate");
    if (challenge == r->headers.end()) {
      return Error(ErrorCode::kUnauthenticated, call.what + ": 401 without a WWW-Authenticate challenge");
    }
    NFC_RETURN_IF_ERROR(Authenticate(challenge->second, call.what));
    *authenticated = true;
    return Outcome::Again();  // the retry with credentials is not a failed attempt
  }
  if (status == 429) {
    return Outcome::Transient(ErrorCode::kResourceExhausted,
                              ref_.registry + " rate limit (429 " + RegistryErrorText(r->error_body) + ")",
                              RetryAfter(r->headers));
  }
  if (status >= 500) {
    return Outcome::Transient(ErrorCode::kUnavailable,
                              std::to_string(status) + " " + RegistryErrorText(r->error_body),
                              RetryAfter(r->headers));
  }
  if (status == 200 && call.incomplete) {
    if (std::string why = call.incomplete(); !why.empty())
      return Outcome::Transient(ErrorCode::kUnavailable, why);
  }
  return Outcome::Done(status);
}

Error RegistryClient::GiveUp(const Call& call, int attempts, const Problem& last,
                             const std::string& why) const {
  return Error(last.code, call.what + ": giving up after " + std::to_string(attempts) +
                              (attempts == 1 ? " attempt" : " attempts") + why + ": " + last.text);
}

Result<long> RegistryClient::Request(const Call& call, Response* response) {
  bool authenticated = false;
  std::mt19937 rng(std::random_device{}());
  auto backoff = options_.retry.initial_backoff;
  const int max_attempts = std::max(1, options_.retry.max_attempts);
  for (int attempt = 1;;) {
    if (PastDeadline()) {
      return Error::Timeout(call.what + ": " + options_.deadline_name +
                            " passed before the request was sent");
    }
    NFC_ASSIGN_OR_RETURN(Outcome o, Attempt(call, response, &authenticated));
    if (o.kind == Outcome::Kind::kDone) return o.status;
    if (o.kind == Outcome::Kind::kAgain) continue;
    const Problem& last = o.problem;
    if (PastDeadline()) {
      return Error::Timeout(call.what + ": " + options_.deadline_name + " reached (attempt " +
                            std::to_string(attempt) + ": " + last.text + ")");
    }
    if (attempt == max_attempts) return GiveUp(call, attempt, last, "");
    auto jitter = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(0, backoff.count() / 2))(rng));
    auto wait = std::max(backoff + jitter, last.retry_after);
    if (std::chrono::steady_clock::now() + wait >= options_.deadline) {
      std::string why = last.retry_after.count() > 0 ? " (the registry asks to retry after " +
                                                           SecondsText(last.retry_after) + ", past "
                                                     : " (the next retry would come after ";
      return GiveUp(call, attempt, last, why + options_.deadline_name + ")");
    }
    log::Debug("retrying registry request", {{"what", call.what},
                                             {"problem", last.text},
                                             {"attempt", attempt},
                                             {"wait_ms", static_cast<int64_t>(wait.count())}});
    std::this_thread::sleep_for(wait);
    backoff *= 2;
    ++attempt;
  }
}

Result<FetchedManifest> RegistryClient::GetManifest(const std::string& tag_or_digest) {
  const std::string what = "manifest " + ref_.registry + "/" + ref_.repository + ":" + tag_or_digest;
  FetchedManifest out;
  Call call;
  call.path = "/v2/" + ref_.repository + "/manifests/" + tag_or_digest;
  call.accept = ManifestAcceptHeader();
  call.what = what;
  call.sink = [&](const char* d, size_t len) -> Status {
    if (out.body.size() + len > kMaxManifestBytes) return Error::DataLoss(what + ": larger than 4 MiB");
    out.body.append(d, len);
    return Ok();
  };
  call.reset = [&]() -> Status {
    out.body.clear();
    return Ok();
  };
  Response r;
  NFC_ASSIGN_OR_RETURN(long status, Request(call, &r));
  if (status == 404) {
    return Error::NotFound(what + " not found (404 " + RegistryErrorText(r.error_body) + ")");
  }
  if (status == 403) {
    return Error(ErrorCode::kPermissionDenied,
                 what + ": access denied (403 " + RegistryErrorText(r.error_body) + ")");
  }
  if (status != 200) {
    return Error::Unavailable(what + ": unexpected status " + std::to_string(status) + ": " +
                              RegistryErrorText(r.error_body));
  }
  out.content_type = r.headers.count("content-type") ? r.headers["content-type"] : "";
  out.digest = Sha256::DigestOf(out.body);
  if (tag_or_digest.rfind("sha256:", 0) == 0 && out.digest != tag_or_digest) {
    return Error::DataLoss(what + ": content has digest " + out.digest);
  }
  // For a tag, the registry's own digest header is the only reference there is. Schema 1 manifests are
  // exempt: their digest covers the payload without the signatures (they are refused later anyway).
  auto header = r.headers.find("docker-content-digest");
  if (header != r.headers.end() && header->second.rfind("sha256:", 0) == 0 &&
      out.content_type.find("distribution.manifest.v1") == std::string::npos &&
      header->second != out.digest) {
    return Error::DataLoss(what + ": content has digest " + out.digest + " but the registry says " +
                           header->second + " (Docker-Content-Digest)");
  }
  return out;
}

Status RegistryClient::GetBlob(const Descriptor& blob, int fd,
                               const std::function<void(uint64_t)>& on_bytes) {
  const std::string what = "blob " + blob.digest;
  Sha256 hash;
  uint64_t received = 0;
  const auto size = static_cast<uint64_t>(blob.size);
  Call call;
  call.path = "/v2/" + ref_.repository + "/blobs/" + blob.digest;
  call.what = what;
  call.expected_length = blob.size;
  call.sink = [&](const char* d, size_t len) -> Status {
    if (received + len > size) {
      return Error::DataLoss(what + ": registry sent more than the " + std::to_string(size) +
                             " bytes the manifest declares");
    }
    hash.Update(d, len);
    NFC_RETURN_IF_ERROR(WriteAllTo(fd, d, len, what));
    received += len;
    if (on_bytes) on_bytes(received);
    return Ok();
  };
  call.reset = [&]() -> Status {
    hash.Reset();
    received = 0;
    // Told before the file shrinks: a reader following the file must not take truncated bytes for data.
    if (on_bytes) on_bytes(0);
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) return Error::Errno("truncate " + what);
    return Ok();
  };
  call.incomplete = [&]() -> std::string {
    if (received == size) return "";
    return what + " truncated: received " + std::to_string(received) + " of " + std::to_string(size) +
           " bytes";
  };
  Response r;
  NFC_ASSIGN_OR_RETURN(long status, Request(call, &r));
  if (status == 404) return Error::NotFound(what + " not found in " + ref_.repository + " (404)");
  if (status == 403) return Error(ErrorCode::kPermissionDenied, what + ": access denied (403)");
  if (status != 200) {
    return Error::Unavailable(what + ": unexpected status " + std::to_string(status) + ": " +
                              RegistryErrorText(r.error_body));
  }
  std::string got = hash.FinishDigest();
  if (got != blob.digest) {
    return Error::DataLoss(what + ": digest mismatch: content hashes to " + got +
                           " (corrupted in the registry or in transit)");
  }
  return Ok();
}

}  // namespace nfc::image
