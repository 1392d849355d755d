// Env: the seam between code that touches files and clocks and the OS, in the style of LevelDB's Env.
// Production code takes an Env& (usually DefaultEnv()); unit tests pass a FaultInjectingEnv
// (base/fault_env.h) to make a chosen write or removal fail and check that the caller recovers or reports it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc {

class Env {
 public:
  virtual ~Env() = default;

  // The operations of base/fs.h, with the same contracts.
  virtual Result<std::string> ReadFile(const std::string& path, size_t max_bytes) = 0;
  virtual Status WriteFileDurably(const std::string& path, std::string_view contents, mode_t mode) = 0;
  virtual Status MakeDir(const std::string& path, mode_t mode) = 0;
  virtual Status MakeDirs(const std::string& path, mode_t mode) = 0;
  virtual Status RemoveTree(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;

  // base/clock.h's clocks.
  virtual int64_t UnixNanos() = 0;
  virtual std::chrono::steady_clock::time_point SteadyNow() = 0;
};

// The real file system and clocks. Lives for the whole process; thread-safe.
Env& DefaultEnv();

}  // namespace nfc
