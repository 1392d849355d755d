// GrowingBlob: a blob that a download (or a copy from a local source) is writing into the cache while the
// converter reads it, so an image is converted as it arrives instead of after.
//
// The download reports how far the file has been written (Grew) and, in the end, whether the blob verified
// (Finish). Readers (Open) see exactly the bytes written so far and wait for more. A download that starts
// over (a retry truncates the file and reports 0 first) invalidates what readers took: their next read
// fails with kCancelled, and Settle() says false, so the layer is read again. Nothing a reader took is
// trusted until Settle() says true: the download verified the blob's size and digest, and the file was not
// rewritten since the reader opened it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/layer_stream.h"

namespace nfc::image {

class GrowingBlob {
 public:
  // The writer's side. Attach gives the file being written (or the complete blob already in the cache).
  void Attach(UniqueFd fd);
  // Bytes written so far in this attempt; less than before means the download started over.
  void Grew(uint64_t bytes);
  // The download is over: Ok when the blob verified, else why not. Wakes every reader.
  void Finish(Status status);

  // The reader's side: the bytes as they arrive.
  std::unique_ptr<ByteSource> Open();
  // Waits for Finish: the download's error, or whether the blob was left unchanged since the last Open.
  Result<bool> Settle();
  // Bytes written so far (for progress).
  uint64_t written();

 private:
  class Reader;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<UniqueFd> fd_;  // shared with readers, which may outlive a re-attach
  uint64_t size_ = 0;
  uint64_t generation_ = 0;  // bumped when the download starts over
  uint64_t opened_generation_ = 0;
  std::optional<Status> done_;
};

}  // namespace nfc::image
