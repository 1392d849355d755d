// FifoWriter: delivers a task's output into one of the FIFOs Nomad's logmon reads (TaskConfig.stdout_path /
// stderr_path), or into /dev/null when task logging is disabled.
//
// Nomad creates the FIFOs (mode 0600) and opens them for reading in logmon, a process that can itself
// restart. Rules this writer follows (reference 5.4):
//  - open with O_WRONLY|O_NONBLOCK|O_NOFOLLOW: a FIFO without a reader fails with ENXIO instead of blocking,
//  so
//    we retry until logmon is back; O_NOFOLLOW refuses a symlink swapped in for the FIFO;
//  - the path must be a FIFO or a character device (/dev/null); anything else is refused by name;
//  - a write that fails with EPIPE (the reader went away) closes the fd and reopens, then writes the rest;
//  - Write() returns only once every byte has been accepted by the pipe, which is what lets the shim
//  acknowledge
//    the guest's log offsets afterwards: bytes are never dropped by us and never written twice.
// Data already inside the pipe buffer when the reader dies is lost with the reader; that is logmon's
// contract. Not thread-safe: one writer per stream.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::shim {

class FifoWriter {
 public:
  explicit FifoWriter(std::string path) : path_(std::move(path)) {}
  FifoWriter(const FifoWriter&) = delete;
  FifoWriter& operator=(const FifoWriter&) = delete;

  // Writes all of `data`, waiting for a reader (and for room in the pipe) as long as needed, checking
  // `cancel` every `poll_interval`. Returns kCancelled when cancel became true before everything was written
  // (the bytes written so far are reported in *written), or an error that retrying cannot fix (not a FIFO,
  // EACCES, ...).
  Status Write(std::string_view data, const std::atomic<bool>& cancel, size_t* written = nullptr);

  // Closes the write end, so the reader sees EOF once all writers are gone.
  void Close() { fd_.Reset(); }
  bool is_open() const { return fd_.valid(); }
  const std::string& path() const { return path_; }
  // How many times the FIFO was (re)opened; 1 after the first successful open.
  int open_count() const { return open_count_; }

  std::chrono::milliseconds poll_interval{100};

 private:
  Status OpenOnce(bool* no_reader);

  std::string path_;
  UniqueFd fd_;
  int open_count_ = 0;
};

}  // namespace nfc::shim
