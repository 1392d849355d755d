// Docker's config.json (the operator's file, but written by many tools): lookups for Docker Hub and another
// registry. No credential helper runs; the stand-in records that one was asked for.
#include <cstdint>

#include "fuzz_util.h"
#include "image/credentials.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto helper = [](const std::string& name,
                   const std::string&) -> nfc::Result<std::optional<nfc::image::RegistryAuth>> {
    NFC_FUZZ_CHECK(!name.empty() && name.find('/') == std::string::npos);
    return std::optional<nfc::image::RegistryAuth>();
  };
  for (const char* registry : {"docker.io", "ghcr.io", "localhost:5000"}) {
    auto got = nfc::image::CredentialsFromDockerConfig(nfc::fuzz::AsText(data, size), registry, helper);
    if (got.ok() && got->has_value())
      NFC_FUZZ_CHECK(!(*got)->username.empty() || !(*got)->identity_token.empty());
  }
  return 0;
}
