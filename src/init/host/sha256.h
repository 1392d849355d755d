// SHA-256 (FIPS 180-4) for nomad-init, which is static and links no crypto library: it verifies update
// bundles (update.h) against their manifest. Not for secrets: no constant-time claims are needed there.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nfc::init::host {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t len);
  // 64 lower-case hex digits; the object must not be updated afterwards.
  std::string HexDigest();
  static std::string HexOf(std::string_view data);

 private:
  void Block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t used_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace nfc::init::host
