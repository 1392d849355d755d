#include "image/registry_http.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

namespace nfc::image::registry_http {

using json = nlohmann::json;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

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

std::chrono::milliseconds RetryAfter(const std::map<std::string, std::string>& headers) {
  auto it = headers.find("retry-after");
  if (it == headers.end() || it->second.empty()) return std::chrono::milliseconds(0);
  constexpr long kDay = 86400;
  const std::string& v = it->second;
  long secs = 0;
  if (v.find_first_not_of("0123456789") == std::string::npos) {
    secs = v.size() > 6 ? kDay : std::atol(v.c_str());
  } else {
    time_t when = curl_getdate(v.c_str(), nullptr);
    if (when < 0) return std::chrono::milliseconds(0);
    secs = static_cast<long>(when - std::time(nullptr));
  }
  return std::chrono::seconds(std::clamp(secs, 0L, kDay));
}

}  // namespace nfc::image::registry_http
