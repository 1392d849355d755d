// FaultInjectingEnv: an Env for unit tests that passes calls through to another Env, except those it was told
// to fail. A test names the operation, a path suffix and an errno ("fail WriteFileDurably of
// */driver_state.json with ENOSPC"), runs the code under test, and checks what it did; the per-operation
// counters show which calls were made. Clocks pass through too unless a test fixes them (SetClocks) and moves
// them (Advance). Thread-safe, so it can be shared with the threads of the code under test.
#pragma once

#include <array>
#include <cerrno>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"

namespace nfc {

class FaultInjectingEnv : public Env {
 public:
  enum class Op { kReadFile, kWriteFileDurably, kMakeDir, kMakeDirs, kRemoveTree, kExists };
  static constexpr size_t kOpCount = 6;

  explicit FaultInjectingEnv(Env& base = DefaultEnv()) : base_(base) {}

  // From now on, `op` on any path ending in `path_suffix` fails with Error::Sys(err, ...) (Exists returns
  // false). times < 0: every matching call; otherwise only the next `times` matching calls.
  void FailOn(Op op, std::string path_suffix, int err = EIO, int times = -1) {
    std::lock_guard lock(mu_);
    faults_.push_back({op, std::move(path_suffix), err, times});
  }
  void ClearFaults() {
    std::lock_guard lock(mu_);
    faults_.clear();
  }
  // Calls made of op, failed ones included, and how many of them were failed by a fault.
  int Calls(Op op) const {
    std::lock_guard lock(mu_);
    return calls_[Index(op)];
  }
  int Failures(Op op) const {
    std::lock_guard lock(mu_);
    return failures_[Index(op)];
  }

  // Replaces both clocks with fixed values that only Advance() moves.
  void SetClocks(int64_t unix_nanos, std::chrono::steady_clock::time_point steady) {
    std::lock_guard lock(mu_);
    fake_clock_ = FakeClock{unix_nanos, steady};
  }
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    if (!fake_clock_) return;
    fake_clock_->unix_nanos += d.count();
    fake_clock_->steady += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
  }

  Result<std::string> ReadFile(const std::string& path, size_t max_bytes) override {
    if (auto e = Check(Op::kReadFile, "read " + path, path)) return *e;
    return base_.ReadFile(path, max_bytes);
  }
  Status WriteFileDurably(const std::string& path, std::string_view contents, mode_t mode) override {
    if (auto e = Check(Op::kWriteFileDurably, "write " + path, path)) return *e;
    return base_.WriteFileDurably(path, contents, mode);
  }
  Status MakeDir(const std::string& path, mode_t mode) override {
    if (auto e = Check(Op::kMakeDir, "mkdir " + path, path)) return *e;
    return base_.MakeDir(path, mode);
  }
  Status MakeDirs(const std::string& path, mode_t mode) override {
    if (auto e = Check(Op::kMakeDirs, "mkdir " + path, path)) return *e;
    return base_.MakeDirs(path, mode);
  }
  Status RemoveTree(const std::string& path) override {
    if (auto e = Check(Op::kRemoveTree, "remove " + path, path)) return *e;
    return base_.RemoveTree(path);
  }
  bool Exists(const std::string& path) override {
    if (Check(Op::kExists, "stat " + path, path)) return false;
    return base_.Exists(path);
  }
  int64_t UnixNanos() override {
    {
      std::lock_guard lock(mu_);
      if (fake_clock_) return fake_clock_->unix_nanos;
    }
    return base_.UnixNanos();
  }
  std::chrono::steady_clock::time_point SteadyNow() override {
    {
      std::lock_guard lock(mu_);
      if (fake_clock_) return fake_clock_->steady;
    }
    return base_.SteadyNow();
  }

 private:
  struct Fault {
    Op op;
    std::string suffix;
    int err;
    int remaining;  // < 0: unlimited
  };
  struct FakeClock {
    int64_t unix_nanos;
    std::chrono::steady_clock::time_point steady;
  };

  static size_t Index(Op op) { return static_cast<size_t>(op); }

  // Counts the call; the injected error if a fault matches.
  std::optional<Error> Check(Op op, const std::string& what, const std::string& path) {
    std::lock_guard lock(mu_);
    calls_[Index(op)]++;
    for (auto& f : faults_) {
      if (f.op != op || f.remaining == 0) continue;
      if (path.size() < f.suffix.size() ||
          path.compare(path.size() - f.suffix.size(), f.suffix.size(), f.suffix) != 0)
        continue;
      if (f.remaining > 0) f.remaining--;
      failures_[Index(op)]++;
      return Error::Sys(f.err, what + " (injected)");
    }
    return std::nullopt;
  }

  Env& base_;
  mutable std::mutex mu_;
  std::vector<Fault> faults_;
  std::array<int, kOpCount> calls_{};
  std::array<int, kOpCount> failures_{};
  std::optional<FakeClock> fake_clock_;
};

}  // namespace nfc
