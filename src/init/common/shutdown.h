// The end of a PID 1's life: stop every other process, flush and unmount filesystems, and reboot. Shared by
// the guest role (Firecracker ends on a guest reboot with reboot=k; QEMU with -no-reboot and reboot=a) and
// the host role. Never returns.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>

namespace nfc::init {

enum class PowerAction { kReboot, kPowerOff, kHalt };

// SIGTERM to every process but us (kill(-1)), reaping as they exit, until none are left or grace passes; then
// SIGKILL and reap until none are left (bounded by another second). on_reaped is told about every child
// reaped.
void TerminateAllProcesses(std::chrono::milliseconds grace, const std::function<void(pid_t, int)>& on_reaped);

// TerminateAllProcesses(grace) + sync + UnmountAll + sync + reboot(2). In a PID namespace (tests) reboot(2)
// ends the namespace instead, which the parent sees as our death by SIGHUP (reboot) or SIGINT (power off).
[[noreturn]] void ShutdownSystem(PowerAction action, std::chrono::milliseconds grace);

// The last resort for fatal errors: report on the console, sync, reboot. PID 1 must never exit (the kernel
// would panic), so every path that cannot continue ends here.
[[noreturn]] void FatalReboot(const char* what);

}  // namespace nfc::init
