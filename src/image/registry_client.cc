#include "image/registry_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "base/log.h"
#include "image/credentials.h"
#include "image/sha256.h"

namespace nfc::image {
namespace {

using json = nlohmann::json;
constexpr size_t kMaxManifestBytes = 4 << 20;  // the distribution spec's limit registries enforce
constexpr size_t kMaxErrorBody = 8 << 10;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Parses `Scheme k="v",k2="v2"` into the scheme (lowercased) and parameters.
std::pair<std::string, std::map<std::string, std::string>> ParseChallenge(const std::string& h) {
  std::map<std::string, std::string> params;
  size_t sp = h.find(' ');
  std::string scheme = Lower(h.substr(0, sp));
  size_t i = sp == std::string::npos ? h.size() : sp + 1;
  while (i < h.size()) {
    while (i < h.size() && (h[i] == ' ' || h[i] == ',')) ++i;
    size_t eq = h.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = Lower(h.substr(i, eq - i));
    i = eq + 1;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        value += h[i++];
      }
      ++i;
    } else {
      size_t end = h.find(',', i);
      value = h.substr(i, end == std::string::npos ? std::string::npos : end - i);
      i = end == std::string::npos ? h.size() : end;
    }
    params[key] = value;
  }
  return {scheme, params};
}

// "Basic <base64(user:password)>" (RFC 7617).
std::string BasicAuthHeader(const RegistryAuth& creds) {
  std::string plain = creds.username + ":" + creds.password;
  std::string enc(4 * ((plain.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(enc.data()),
                      reinterpret_cast<const unsigned char*>(plain.data()), static_cast<int>(plain.size()));
  enc.resize(static_cast<size_t>(n));
  return "Basic " + enc;
}

std::string Escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

std::string RegistryErrorText(const std::string& body) {
  try {
    json j = json::parse(body);
    if (j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
      const auto& e = j["errors"][0];
      std::string s = e.value("code", "");
      if (e.contains("message") && e["message"].is_string())
        s += (s.empty() ? "" : ": ") + e["message"].get<std::string>();
      return s;
    }
  } catch (const json::exception&) {
  }
  std::string t = body.substr(0, 200);
  std::replace(t.begin(), t.end(), '\n', ' ');
  return t;
}

bool RetryableCurlError(int code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

}  // namespace

struct RegistryClient::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercased names, of the final response
  std::string error_body;
  const Sink* sink = nullptr;
  std::optional<Error> sink_error;
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
  if (!found.ok()) return std::move(found).error();
  creds_ = *found;
  return Ok();
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
  auto header_cb = +[](char* buf, size_t size, size_t n, void* priv) -> size_t {
    auto* resp = static_cast<Response*>(priv);
    std::string line(buf, size * n);
    if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect or 100-continue)
      resp->headers.clear();
      resp->error_body.clear();
      size_t sp = line.find(' ');
      resp->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
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
  };
  auto write_cb = +[](char* buf, size_t size, size_t n, void* priv) -> size_t {
    auto* resp = static_cast<Response*>(priv);
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
  };
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // blobs often redirect to object storage
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "nomad-driver-firecracker");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a stalled transfer (no byte for 60 s) is a timeout
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  if (options_.deadline != std::chrono::steady_clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(options_.deadline -
                                                                      std::chrono::steady_clock::now());
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, left.count())));
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
  if (code != CURLE_OK) return Error::Unavailable(what + ": token request to " + realm + ": " + err);
  if (*status == 401 || *status == 403) {
    return Error(ErrorCode::kUnauthenticated, what + ": token server " + realm + " refused the credentials" +
                                                  (creds_ ? " for user \"" + creds_->username + "\"" : "") +
                                                  " (" + std::to_string(*status) + ")");
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

Result<long> RegistryClient::Request(const std::string& path, const std::string& accept, const Sink& sink,
                                     const std::function<Status()>& reset, Response* response,
                                     const std::string& what) {
  bool authenticated = false;
  std::mt19937 rng(std::random_device{}());
  auto backoff = options_.initial_backoff;
  std::string last_problem;
  for (int attempt = 1; attempt <= options_.max_attempts;) {
    NFC_RETURN_IF_ERROR(reset());
    *response = Response{};
    int code = 0;
    std::string err;
    std::string url = scheme_ + "://" + ref_.ApiHost() + path;
    NFC_ASSIGN_OR_RETURN(long status, Perform(url, accept, sink, response, &code, &err));
    if (response->sink_error) return *response->sink_error;
    if (code != CURLE_OK) {
      // A loopback or insecure registry that does not speak TLS at all gets plain HTTP (as Docker does). A
      // certificate that fails verification is never a reason to downgrade.
      if (scheme_ == "https" && PlainHttpAllowed() && code == CURLE_SSL_CONNECT_ERROR) {
        log::Info("registry does not speak TLS; using plain HTTP (loopback or insecure registry)",
                  {{"registry", ref_.registry}});
        scheme_ = "http";
        continue;
      }
      if (code == CURLE_PEER_FAILED_VERIFICATION) {
        return Error(ErrorCode::kUnavailable,
                     what + ": " + url + ": TLS certificate not trusted (" + err +
                         "); give the registry's CA with ca_file or mark it insecure");
      }
      if (!RetryableCurlError(code)) return Error::Unavailable(what + ": " + url + ": " + err);
      last_problem = err;
    } else if (status == 401) {
      if (authenticated) {
        return Error(
            ErrorCode::kUnauthenticated,
            what + ": " + ref_.registry + " refused the credentials" +
                (creds_ && !creds_->username.empty() ? " of user \"" + creds_->username + "\"" : "") +
                " (401 " + RegistryErrorText(response->error_body) + ")");
      }
      auto challenge = response->headers.find("www-authenticate");
      if (challenge == response->headers.end()) {
        return Error(ErrorCode::kUnauthenticated, what + ": 401 without a WWW-Authenticate challenge");
      }
      NFC_RETURN_IF_ERROR(Authenticate(challenge->second, what));
      authenticated = true;
      continue;  // the retry with credentials does not count as a failed attempt
    } else if (status == 429 || status >= 500) {
      last_problem = std::to_string(status) + " " + RegistryErrorText(response->error_body);
      if (status == 429 && attempt == options_.max_attempts) {
        return Error(ErrorCode::kResourceExhausted, what + ": " + ref_.registry + " rate limit (429): " +
                                                        RegistryErrorText(response->error_body));
      }
      if (auto ra = response->headers.find("retry-after"); ra != response->headers.end()) {
        long secs = std::atol(ra->second.c_str());
        if (secs > 0 && secs <= 30)
          backoff = std::max<std::chrono::milliseconds>(backoff, std::chrono::seconds(secs));
      }
    } else {
      return status;
    }
    if (attempt == options_.max_attempts) break;
    auto jitter = std::chrono::milliseconds(
        std::uniform_int_distribution<int>(0, static_cast<int>(backoff.count() / 2))(rng));
    auto wait = backoff + jitter;
    if (std::chrono::steady_clock::now() + wait >= options_.deadline) break;
    log::Debug("retrying registry request",
               {{"what", what}, {"problem", last_problem}, {"attempt", attempt}});
    std::this_thread::sleep_for(wait);
    backoff *= 2;
    ++attempt;
  }
  return Error::Unavailable(what + ": giving up after " + std::to_string(options_.max_attempts) +
                            " attempts: " + last_problem);
}

Result<FetchedManifest> RegistryClient::GetManifest(const std::string& tag_or_digest) {
  const std::string what = "manifest " + ref_.registry + "/" + ref_.repository + ":" + tag_or_digest;
  FetchedManifest out;
  Sink sink = [&](const char* d, size_t len) -> Status {
    if (out.body.size() + len > kMaxManifestBytes) return Error::DataLoss(what + ": larger than 4 MiB");
    out.body.append(d, len);
    return Ok();
  };
  auto reset = [&]() -> Status {
    out.body.clear();
    return Ok();
  };
  Response r;
  NFC_ASSIGN_OR_RETURN(long status, Request("/v2/" + ref_.repository + "/manifests/" + tag_or_digest,
                                            ManifestAcceptHeader(), sink, reset, &r, what));
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
  return out;
}

Status RegistryClient::GetBlob(const Descriptor& blob, int fd,
                               const std::function<void(uint64_t)>& on_bytes) {
  const std::string what = "blob " + blob.digest;
  Sha256 hash;
  uint64_t received = 0;
  Sink sink = [&](const char* d, size_t len) -> Status {
    if (received + len > static_cast<uint64_t>(blob.size)) {
      return Error::DataLoss(what + ": registry sent more than the " + std::to_string(blob.size) +
                             " bytes the manifest declares");
    }
    hash.Update(d, len);
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::write(fd, d + done, len - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error::Errno("write " + what);
      }
      done += static_cast<size_t>(n);
    }
    received += len;
    if (on_bytes) on_bytes(received);
    return Ok();
  };
  auto reset = [&]() -> Status {
    hash.Reset();
    received = 0;
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) return Error::Errno("truncate " + what);
    return Ok();
  };
  Response r;
  NFC_ASSIGN_OR_RETURN(
      long status, Request("/v2/" + ref_.repository + "/blobs/" + blob.digest, "", sink, reset, &r, what));
  if (status == 404) return Error::NotFound(what + " not found in " + ref_.repository + " (404)");
  if (status == 403) return Error(ErrorCode::kPermissionDenied, what + ": access denied (403)");
  if (status != 200) {
    return Error::Unavailable(what + ": unexpected status " + std::to_string(status) + ": " +
                              RegistryErrorText(r.error_body));
  }
  if (received != static_cast<uint64_t>(blob.size)) {
    return Error::DataLoss(what + ": truncated: received " + std::to_string(received) + " of " +
                           std::to_string(blob.size) + " bytes");
  }
  std::string got = hash.FinishDigest();
  if (got != blob.digest) {
    return Error::DataLoss(what + ": digest mismatch: content hashes to " + got +
                           " (corrupted in the registry "
                           "or in transit)");
  }
  return Ok();
}

}  // namespace nfc::image
