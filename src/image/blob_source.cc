#include "image/blob_source.h"

#include <fcntl.h>
#include <unistd.h>

#include "base/unique_fd.h"
#include "image/reference.h"
#include "image/sha256.h"

namespace nfc::image {
namespace {

class RegistrySource : public BlobSource {
 public:
  explicit RegistrySource(RegistryClient* c) : client_(c) {}
  Status Fetch(const Descriptor& blob, int fd, const std::function<void(uint64_t)>& on_bytes) override {
    return client_->GetBlob(blob, fd, on_bytes);
  }

 private:
  RegistryClient* client_;
};

class DirectorySource : public BlobSource {
 public:
  explicit DirectorySource(std::string dir) : dir_(std::move(dir)) {}
  Status Fetch(const Descriptor& blob, int fd, const std::function<void(uint64_t)>& on_bytes) override {
    NFC_RETURN_IF_ERROR(ValidateDigest(blob.digest));
    std::string path = dir_ + "/sha256/" + std::string(DigestHex(blob.digest));
    UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return Error::Errno("blob " + blob.digest + ": open " + path);
    return CopyVerified(in.get(), blob, fd, on_bytes);
  }

 private:
  std::string dir_;
};

}  // namespace

Status CopyVerified(int in_fd, const Descriptor& blob, int out_fd,
                    const std::function<void(uint64_t)>& on_bytes) {
  if (::ftruncate(out_fd, 0) != 0 || ::lseek(out_fd, 0, SEEK_SET) != 0) return Error::Errno("truncate");
  Sha256 hash;
  uint64_t total = 0;
  std::string buf(1 << 20, '\0');
  while (true) {
    ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("read blob " + blob.digest);
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > static_cast<uint64_t>(blob.size)) {
      return Error::DataLoss("blob " + blob.digest + ": larger than the declared " +
                             std::to_string(blob.size) + " bytes");
    }
    hash.Update(buf.data(), static_cast<size_t>(n));
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out_fd, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return Error::Errno("write blob " + blob.digest);
      }
      done += w;
    }
    if (on_bytes) on_bytes(total);
  }
  if (total != static_cast<uint64_t>(blob.size)) {
    return Error::DataLoss("blob " + blob.digest + ": truncated: " + std::to_string(total) + " of " +
                           std::to_string(blob.size) + " bytes");
  }
  std::string got = hash.FinishDigest();
  if (got != blob.digest)
    return Error::DataLoss("blob " + blob.digest + ": digest mismatch: content hashes to " + got);
  return Ok();
}

std::unique_ptr<BlobSource> RegistryBlobSource(RegistryClient* client) {
  return std::make_unique<RegistrySource>(client);
}
std::unique_ptr<BlobSource> DirectoryBlobSource(std::string blobs_dir) {
  return std::make_unique<DirectorySource>(std::move(blobs_dir));
}

}  // namespace nfc::image
