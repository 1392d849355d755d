#include "image/growing_blob.h"

#include <unistd.h>

#include <cerrno>

namespace nfc::image {

class GrowingBlob::Reader : public ByteSource {
 public:
  Reader(GrowingBlob* blob, uint64_t generation) : blob_(blob), generation_(generation) {}

  Result<size_t> Read(char* buf, size_t n) override {
    std::shared_ptr<UniqueFd> fd;
    size_t want = 0;
    {
      std::unique_lock<std::mutex> lock(blob_->mu_);
      blob_->cv_.wait(lock, [&] {
        return blob_->generation_ != generation_ || blob_->done_ || (blob_->fd_ && blob_->size_ > offset_);
      });
      if (blob_->generation_ != generation_) return StartedOver();
      if (offset_ >= blob_->size_) {
        if (!blob_->done_->ok()) return blob_->done_->error();
        return size_t{0};
      }
      fd = blob_->fd_;
      want = static_cast<size_t>(std::min<uint64_t>(n, blob_->size_ - offset_));
    }
    ssize_t got;
    do {
      got = ::pread(fd->get(), buf, want, static_cast<off_t>(offset_));
    } while (got < 0 && errno == EINTR);
    if (got < 0) return Error::Errno("read the blob being downloaded");
    std::lock_guard<std::mutex> lock(blob_->mu_);
    // Bytes read while the download truncated the file are not the blob's.
    if (blob_->generation_ != generation_ || got == 0) return StartedOver();
    offset_ += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
  uint64_t Consumed() const override { return offset_; }

 private:
  static Error StartedOver() { return Error(ErrorCode::kCancelled, "the download started over"); }

  GrowingBlob* blob_;
  uint64_t generation_;
  uint64_t offset_ = 0;
};

void GrowingBlob::Attach(UniqueFd fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_) ++generation_;
  fd_ = std::make_shared<UniqueFd>(std::move(fd));
  size_ = 0;
  cv_.notify_all();
}

void GrowingBlob::Grew(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes < size_) ++generation_;
  size_ = bytes;
  cv_.notify_all();
}

void GrowingBlob::Finish(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ = std::move(status);
  cv_.notify_all();
}

std::unique_ptr<ByteSource> GrowingBlob::Open() {
  std::lock_guard<std::mutex> lock(mu_);
  opened_generation_ = generation_;
  return std::make_unique<Reader>(this, generation_);
}

Result<bool> GrowingBlob::Settle() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_.has_value(); });
  if (!done_->ok()) return done_->error();
  return generation_ == opened_generation_;
}

uint64_t GrowingBlob::written() {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

}  // namespace nfc::image
