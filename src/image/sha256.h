// Streaming SHA-256 (OpenSSL EVP) for verifying blobs while they arrive.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

namespace nfc::image {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // "sha256:<hex>"; the hasher must not be used afterwards without Reset().
  std::string FinishDigest();
  void Reset();

  static std::string DigestOf(std::string_view data);

 private:
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

}  // namespace nfc::image
