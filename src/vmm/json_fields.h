// Reading members of JSON a VMM sent (QMP replies and events, Firecracker API bodies). The peer decides the
// shapes: a member of the wrong type, or a message that is not an object, reads as absent instead of throwing
// (nlohmann's value() and operator[] throw on both, which would end the shim).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace nfc::vmm {

// j[key] when j is an object holding a string there, else fallback.
inline std::string StringMember(const nlohmann::json& j, std::string_view key, std::string fallback = "") {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// j[key] when j is an object holding a non-negative integer there, else 0.
inline uint64_t UnsignedMember(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// j[key] when j is an object holding it, else a null value.
inline const nlohmann::json& Member(const nlohmann::json& j, std::string_view key) {
  static const nlohmann::json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

// A message for an error: never throws, whatever the strings hold.
inline std::string Show(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace nfc::vmm
