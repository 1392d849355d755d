#include "image/sha256.h"

#include <cstdio>
#include <cstdlib>

namespace nfc::image {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) std::abort();  // allocation failure of a few bytes: nothing sensible to do
  Reset();
}

void Sha256::Reset() {
  EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
}

void Sha256::Update(const void* data, size_t len) {
  EVP_DigestUpdate(ctx_.get(), data, len);
}

std::string Sha256::FinishDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &n);
  std::string out = "sha256:";
  char buf[3];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    out += buf;
  }
  return out;
}

std::string Sha256::DigestOf(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.FinishDigest();
}

}  // namespace nfc::image
