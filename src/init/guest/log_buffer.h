// LogBuffer: one output stream of the workload (stdout or stderr) between the pipe and the host, addressed by
// byte offset since the workload started. Bytes stay until the host acknowledges them, so a host that
// reconnects can resume from any offset it has not acknowledged. Bounded: when full, init stops reading the
// pipe and the workload's writes block (backpressure) - nothing is dropped. Not thread-safe (init is
// single-threaded).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nfc::init::guest {

class LogBuffer {
 public:
  explicit LogBuffer(uint64_t capacity) : capacity_(capacity) {}

  uint64_t capacity() const { return capacity_; }
  uint64_t start() const { return start_; }  // lowest offset still held (= everything below was acknowledged)
  uint64_t end() const { return start_ + (data_.size() - head_); }  // next offset to be written
  uint64_t acked() const { return start_; }
  uint64_t free_space() const { return capacity_ - (end() - start_); }

  // Appends up to free_space() bytes; returns how many were taken.
  size_t Append(std::string_view bytes);
  // Drops everything below offset (clamped to [start, end]).
  void Ack(uint64_t offset);
  // Up to max bytes starting at offset (clamped to start); empty when offset >= end.
  std::string_view Read(uint64_t offset, size_t max) const;

 private:
  uint64_t capacity_;
  uint64_t start_ = 0;  // offset of data_[head_]
  std::string data_;
  size_t head_ = 0;
};

}  // namespace nfc::init::guest
