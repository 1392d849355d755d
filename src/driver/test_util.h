// Helpers shared by the driver's unit tests.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace nfc::driver::testing {

// "86 a4 61" (spaces and newlines ignored) -> bytes.
inline std::string Hex(std::string_view text) {
  std::string out;
  int nibble = -1;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    if (nibble < 0) {
      nibble = v;
    } else {
      out.push_back(static_cast<char>(nibble << 4 | v));
      nibble = -1;
    }
  }
  return out;
}

}  // namespace nfc::driver::testing
