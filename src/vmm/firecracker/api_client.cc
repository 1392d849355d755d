#include "vmm/firecracker/api_client.h"

#include <curl/curl.h>

#include <cstdio>
#include <mutex>

namespace nfc::vmm::firecracker {
namespace {

std::once_flag curl_init_once;

size_t AppendBody(char* data, size_t size, size_t nmemb, void* user) {
  static_cast<std::string*>(user)->append(data, size * nmemb);
  return size * nmemb;
}

}  // namespace

Result<FirecrackerVersion> FirecrackerVersion::Parse(std::string_view text) {
  FirecrackerVersion v;
  v.text = std::string(text);
  std::string s(text);
  if (!s.empty() && s[0] == 'v') s.erase(0, 1);
  if (std::sscanf(s.c_str(), "%d.%d.%d", &v.major, &v.minor, &v.patch) < 2) {
    return Error::InvalidArgument("cannot parse Firecracker version '" + std::string(text) + "'");
  }
  return v;
}

std::string FaultMessage(std::string_view body) {
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("fault_message") && j["fault_message"].is_string()) {
      return j["fault_message"].get<std::string>();
    }
  } catch (const nlohmann::json::exception&) {
  }
  return body.empty() ? "(empty body)" : std::string(body);
}

ApiClient::ApiClient(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

ApiClient::~ApiClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<ApiResponse> ApiClient::Send(std::string_view method, std::string_view path, std::string_view body) {
  if (!curl_) {
    curl_ = curl_easy_init();
    if (!curl_) return Error::Internal("curl_easy_init failed");
  }
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the connection cache
  std::string url = "http://localhost" + std::string(path);
  std::string method_s(method);
  std::string response;
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path_.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method_s.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  // The API must never be reached through a proxy from the environment.
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  // micro_http honours "Expect: 100-continue" but it costs a round trip: never send it.
  headers = curl_slist_append(headers, "Expect:");
  if (!body.empty()) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  std::string what = std::string(method) + " " + std::string(path);
  if (rc != CURLE_OK) {
    std::string msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) return Error::Timeout(what + " on " + socket_path_ + ": " + msg);
    return Error::Unavailable(what + " on " + socket_path_ + ": " + msg);
  }
  ApiResponse r;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  r.body = std::move(response);
  return r;
}

Status ApiClient::Expect204(std::string_view method, std::string_view path, const nlohmann::json& body) {
  NFC_ASSIGN_OR_RETURN(ApiResponse r, Send(method, path, body.dump()));
  if (r.status == 204) return Ok();
  std::string what = std::string(method) + " " + std::string(path);
  Error e(r.status == 400 ? ErrorCode::kInvalidArgument : ErrorCode::kInternal,
          what + ": Firecracker answered " + std::to_string(r.status) + ": " + FaultMessage(r.body));
  return e;
}

Result<nlohmann::json> ApiClient::Get(std::string_view path) {
  NFC_ASSIGN_OR_RETURN(ApiResponse r, Send("GET", path, ""));
  std::string what = "GET " + std::string(path);
  if (r.status != 200) {
    return Error::Internal(what + ": Firecracker answered " + std::to_string(r.status) + ": " +
                           FaultMessage(r.body));
  }
  try {
    return nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::exception& e) {
    return Error::DataLoss(what + ": answer is not JSON: " + e.what());
  }
}

}  // namespace nfc::vmm::firecracker
