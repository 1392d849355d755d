// BlobSource: where the blobs of one image come from (a registry, an OCI layout directory, an unpacked
// `docker save` archive). Every source verifies size and digest while copying into the cache.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/error.h"
#include "image/manifest.h"
#include "image/registry_client.h"

namespace nfc::image {

class BlobSource {
 public:
  virtual ~BlobSource() = default;
  // Writes the blob into fd (at offset 0, truncating), verifying it; on_bytes gets the running byte count
  // after the bytes are written, and 0 before the file is truncated for another attempt.
  virtual Status Fetch(const Descriptor& blob, int fd, const std::function<void(uint64_t)>& on_bytes) = 0;
};

// Blobs from a registry.
std::unique_ptr<BlobSource> RegistryBlobSource(RegistryClient* client);
// Blobs from a directory holding sha256/<hex> files (an OCI layout's blobs/ directory).
std::unique_ptr<BlobSource> DirectoryBlobSource(std::string blobs_dir);

// Copies from an open file to fd, verifying size and digest.
Status CopyVerified(int in_fd, const Descriptor& blob, int out_fd,
                    const std::function<void(uint64_t)>& on_bytes);

}  // namespace nfc::image
