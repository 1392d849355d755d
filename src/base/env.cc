#include "base/env.h"

#include "base/clock.h"
#include "base/fs.h"

namespace nfc {
namespace {

class PosixEnv final : public Env {
 public:
  Result<std::string> ReadFile(const std::string& path, size_t max_bytes) override {
    return fs::ReadFile(path, max_bytes);
  }
  Status WriteFileDurably(const std::string& path, std::string_view contents, mode_t mode) override {
    return fs::WriteFileDurably(path, contents, mode);
  }
  Status MakeDir(const std::string& path, mode_t mode) override { return fs::MakeDir(path, mode); }
  Status MakeDirs(const std::string& path, mode_t mode) override { return fs::MakeDirs(path, mode); }
  Status RemoveTree(const std::string& path) override { return fs::RemoveTree(path); }
  bool Exists(const std::string& path) override { return fs::Exists(path); }
  int64_t UnixNanos() override { return UnixNanosNow(); }
  std::chrono::steady_clock::time_point SteadyNow() override { return std::chrono::steady_clock::now(); }
};

}  // namespace

Env& DefaultEnv() {
  static PosixEnv* env =
      new PosixEnv();  // never destroyed: usable from other statics' destructors and threads
  return *env;
}

}  // namespace nfc
