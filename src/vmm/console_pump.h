// ConsolePump: copies a VMM's serial console output from a pipe into a size-bounded file.
//
// The guest controls how much it prints, so the file must not grow without limit (Firecracker's
// prod-host-setup.md asks for bounded sinks). When `path` reaches max_bytes it is renamed to `path`.1
// (replacing the previous one) and a new `path` is started: at most 2 x max_bytes on disk, newest output
// always kept.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::vmm {

class ConsolePump {
 public:
  ConsolePump() = default;
  ~ConsolePump();  // joins the thread (it ends when the pipe's writers are gone)
  ConsolePump(const ConsolePump&) = delete;
  ConsolePump& operator=(const ConsolePump&) = delete;

  // Takes the read end of the pipe; the thread runs until EOF (all write ends closed).
  Status Start(UniqueFd read_end, std::string path, uint64_t max_bytes);
  // Waits for EOF and the last write.
  void Join();
  uint64_t bytes_copied() const { return copied_.load(); }

 private:
  void Run();
  UniqueFd in_;
  UniqueFd out_;
  std::string path_;
  uint64_t max_bytes_ = 0;
  uint64_t in_file_ = 0;
  std::atomic<uint64_t> copied_{0};
  std::thread thread_;
};

}  // namespace nfc::vmm
