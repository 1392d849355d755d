// Helpers of RegistryClient for the HTTP side of the distribution API: challenge parsing, headers, the
// registry's error bodies, and which failures are worth another attempt. Internal to src/image.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>

#include "image/store.h"

namespace nfc::image::registry_http {

std::string Lower(std::string s);
// Parses `Scheme k="v",k2="v2"` into the scheme (lowercased) and parameters.
std::pair<std::string, std::map<std::string, std::string>> ParseChallenge(const std::string& h);
// "Basic <base64(user:password)>" (RFC 7617).
std::string BasicAuthHeader(const RegistryAuth& creds);
// Percent-encoding for a query parameter.
std::string Escape(const std::string& s);
// The first entry of a registry's {"errors":[{"code","message"}]} body, or the start of the body.
std::string RegistryErrorText(const std::string& body);
// A libcurl failure another attempt may not meet (connection, timeout, cut transfer, TLS handshake).
bool RetryableCurlError(int code);
// Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date; 0 when absent or unreadable. Capped at a day
// (a longer wait is past any pull's deadline anyway).
std::chrono::milliseconds RetryAfter(const std::map<std::string, std::string>& headers);

}  // namespace nfc::image::registry_http
