// Shared by the fuzz targets: the input as text, and a property check that reports and aborts (libFuzzer
// keeps the input that aborted as a crash file; the replay runner names it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace nfc::fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits `input` at the first `separator`: what comes before it, and `input` moved past it (or emptied).
inline std::string_view TakeUntil(std::string_view& input, std::string_view separator) {
  size_t cut = input.find(separator);
  std::string_view head = input.substr(0, cut);
  input = cut == std::string_view::npos ? std::string_view() : input.substr(cut + separator.size());
  return head;
}

}  // namespace nfc::fuzz

#define NFC_FUZZ_CHECK(cond)                                                           \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)
