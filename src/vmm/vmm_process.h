// VmmProcess: the VMM's OS process as both backends see it: spawned child (reaped by us) or a process found
// again from a VmRecord (watched through a pidfd, exit status unknown).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <optional>

#include "base/error.h"
#include "base/process.h"
#include "base/unique_fd.h"

namespace nfc::vmm {

class VmmProcess {
 public:
  VmmProcess() = default;
  VmmProcess(const VmmProcess&) = delete;
  VmmProcess& operator=(const VmmProcess&) = delete;

  static Result<VmmProcess*> None();

  // Spawns options as our child. Call once.
  Status Spawn(const SpawnOptions& options);
  // After our spawned child exited and left `pid` (its child) to us as the child subreaper (the jailer with
  // --new-pid-ns): follows `pid` as our child from now on. Call after WaitExit() saw the spawned child end.
  Status FollowReparented(pid_t pid);
  // Adopts a process started by someone else (after a restart). Fails if it is gone or the pid was reused.
  Status Adopt(pid_t pid, unsigned long long start_time);

  pid_t pid() const { return identity_.pid; }
  unsigned long long start_time() const { return identity_.start_time; }
  bool is_child() const { return is_child_; }

  // Waits up to `timeout` for the process to end. Returns the raw wait status for our child, -1 for an
  // adopted process (status unknown), nullopt on timeout. Thread-safe; once ended, returns the same answer at
  // once.
  Result<std::optional<int>> WaitExit(std::chrono::milliseconds timeout);
  bool Exited();

  // Sends a signal unless the process already ended (pidfd_send_signal, so a reused pid is never hit).
  Status Signal(int sig);
  // True once Signal(SIGKILL) was sent by us.
  bool killed_by_us() const { return killed_by_us_; }

 private:
  std::mutex mu_;
  ProcessIdentity identity_;
  UniqueFd pidfd_;
  bool is_child_ = false;
  bool killed_by_us_ = false;
  std::optional<int> status_;  // set once reaped / gone
};

}  // namespace nfc::vmm
