#include "vmm/vmm_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace nfc::vmm {

Status VmmProcess::Spawn(const SpawnOptions& options) {
  NFC_ASSIGN_OR_RETURN(Child child, nfc::Spawn(options));
  std::lock_guard lock(mu_);
  identity_.pid = child.pid;
  is_child_ = true;
  pidfd_ = std::move(child.pidfd);
  if (!pidfd_) {
    // pidfd_open exists on every kernel we support (5.3+); without it we could signal a reused pid.
    kill(child.pid, SIGKILL);
    int status;
    waitpid(child.pid, &status, 0);
    return Error::Internal("pidfd_open failed for the VMM process " + std::to_string(child.pid));
  }
  auto start = ProcessStartTime(child.pid);
  identity_.start_time = start.ok() ? *start : 0;
  return Ok();
}

Status VmmProcess::FollowReparented(pid_t pid) {
  NFC_ASSIGN_OR_RETURN(UniqueFd fd, PidfdOpen(pid));
  NFC_ASSIGN_OR_RETURN(unsigned long long start, ProcessStartTime(pid));
  // Ours only when we are a child subreaper above it; otherwise init took it and its status stays unknown.
  siginfo_t info{};
  bool ours = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0;
  std::lock_guard lock(mu_);
  identity_ = {pid, start};
  pidfd_ = std::move(fd);
  is_child_ = ours;
  killed_by_us_ = false;
  status_.reset();
  return Ok();
}

Status VmmProcess::Adopt(pid_t pid, unsigned long long start_time) {
  ProcessIdentity id{pid, start_time};
  if (!id.IsAlive()) {
    return Error::NotFound("VMM process " + std::to_string(pid) + " (start time " +
                           std::to_string(start_time) + ") is gone");
  }
  NFC_ASSIGN_OR_RETURN(UniqueFd fd, PidfdOpen(pid));
  // Re-check after opening the pidfd: the pidfd now pins this exact process.
  if (!id.IsAlive()) return Error::NotFound("VMM process " + std::to_string(pid) + " is gone");
  std::lock_guard lock(mu_);
  identity_ = id;
  pidfd_ = std::move(fd);
  is_child_ = false;
  return Ok();
}

Result<std::optional<int>> VmmProcess::WaitExit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int fd;
    {
      std::lock_guard lock(mu_);
      if (status_) return std::optional<int>(*status_);
      if (!pidfd_) return Error::FailedPrecondition("no VMM process");
      fd = pidfd_.get();
    }
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    pollfd p{fd, POLLIN, 0};
    // Poll in slices so a concurrent waiter that reaped the child is noticed.
    int slice = static_cast<int>(std::min<long long>(left.count(), 200));
    int n = ::poll(&p, 1, slice);
    if (n < 0 && errno != EINTR) return Error::Errno("poll VMM pidfd");
    if (n > 0) {
      std::lock_guard lock(mu_);
      if (status_) return std::optional<int>(*status_);
      if (is_child_) {
        int status = 0;
        pid_t r;
        do {
          r = waitpid(identity_.pid, &status, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == identity_.pid) {
          status_ = status;
        } else if (r < 0 && errno == ECHILD) {
          status_ = -1;  // someone else reaped it (a waitpid(-1) reaper in the supervisor)
        } else if (r < 0) {
          return Error::Errno("waitpid VMM " + std::to_string(identity_.pid));
        } else {
          continue;  // pidfd readable but not yet reapable: retry
        }
      } else {
        status_ = -1;
      }
      return std::optional<int>(*status_);
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::optional<int>();
  }
}

bool VmmProcess::Exited() {
  auto r = WaitExit(std::chrono::milliseconds(0));
  return !r.ok() || r->has_value();
}

Status VmmProcess::Signal(int sig) {
  std::lock_guard lock(mu_);
  if (status_ || !pidfd_) return Ok();
  if (syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0) {
    if (errno == ESRCH) return Ok();  // already exited, not yet reaped
    return Error::Errno("signal " + std::to_string(sig) + " to VMM " + std::to_string(identity_.pid));
  }
  if (sig == SIGKILL) killed_by_us_ = true;
  return Ok();
}

}  // namespace nfc::vmm
