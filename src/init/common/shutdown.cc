#include "init/common/shutdown.h"

#include <signal.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <thread>

#include "base/log.h"
#include "init/common/mounts.h"
#include "init/common/signals.h"

namespace nfc::init {
namespace {

// Waits until no child is left (ECHILD) or the deadline passes, reaping on the way.
bool ReapUntilNone(std::chrono::steady_clock::time_point deadline,
                   const std::function<void(pid_t, int)>& on_reaped) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      if (on_reaped) on_reaped(pid, status);
      continue;
    }
    if (pid < 0 && errno == ECHILD) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

void TerminateAllProcesses(std::chrono::milliseconds grace,
                           const std::function<void(pid_t, int)>& on_reaped) {
  // kill(-1) reaches every process we may signal except ourselves. Orphans that are not our children (cannot
  // happen for PID 1, which inherits them all) would not show up in waitpid; ESRCH means nobody is left.
  if (kill(-1, SIGTERM) != 0 && errno == ESRCH) {
    ReapUntilNone(std::chrono::steady_clock::now(), on_reaped);
    return;
  }
  kill(-1, SIGCONT);  // stopped processes cannot act on SIGTERM
  if (ReapUntilNone(std::chrono::steady_clock::now() + grace, on_reaped)) return;
  log::Warn("processes left after SIGTERM grace, sending SIGKILL", {{"grace_ms", grace.count()}});
  kill(-1, SIGKILL);
  ReapUntilNone(std::chrono::steady_clock::now() + std::chrono::seconds(1), on_reaped);
}

void ShutdownSystem(PowerAction action, std::chrono::milliseconds grace) {
  TerminateAllProcesses(grace, nullptr);
  sync();
  auto stuck = UnmountAll();
  for (const auto& m : stuck) log::Warn("filesystem left mounted (detached lazily)", {{"mount", m}});
  sync();
  int cmd = action == PowerAction::kReboot     ? RB_AUTOBOOT
            : action == PowerAction::kPowerOff ? RB_POWER_OFF
                                               : RB_HALT_SYSTEM;
  log::Info("rebooting", {{"action", action == PowerAction::kReboot ? "reboot" : "power-off"}});
  reboot(cmd);
  // reboot(2) only returns on error (e.g. EPERM without CAP_SYS_BOOT). PID 1 may not exit; park forever.
  log::Error("reboot failed; halting in place", {{"error", strerror(errno)}});
  for (;;) pause();
}

void FatalReboot(const char* what) {
  dprintf(2, "nomad-init: fatal: %s; rebooting\n", what);
  sync();
  reboot(RB_AUTOBOOT);
  for (;;) pause();
}

}  // namespace nfc::init
