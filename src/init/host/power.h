// Power events and the end of the machine.
//
// Requests to stop reach PID 1 as: the ACPI power button (an input device reporting KEY_POWER: QEMU's
// `system_powerdown`, a cloud's "stop instance", a short press on hardware), Ctrl-Alt-Del (the kernel sends
// SIGINT to PID 1 once reboot(RB_DISABLE_CAD) is set), or a signal from a process on the node: SIGTERM/SIGINT
// reboot, SIGUSR2/SIGPWR power off, SIGUSR1 halts (busybox init's conventions).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"

namespace nfc::init::host {

enum class PowerAction { kPowerOff, kReboot, kHalt };
std::string_view PowerActionName(PowerAction action);
std::optional<PowerAction> PowerActionForSignal(int sig);

// Opens every /dev/input/event* whose capabilities include KEY_POWER (non-blocking, close-on-exec).
std::vector<UniqueFd> OpenPowerButtons();
// Drains one input fd; true if it reported a KEY_POWER press.
bool ReadPowerButton(int fd);
// True if the sysfs capability bitmap ("key" file: space-separated hex words, most significant first) has
// bit.
bool CapabilityHasBit(std::string_view bitmap, int bit);

// The last steps, after the agent has stopped: SIGTERM to every remaining process, a grace period, SIGKILL,
// reap, unmount everything (data partition clean), sync, and reboot(2). Never returns.
[[noreturn]] void FinishShutdown(PowerAction action, std::chrono::milliseconds grace);

}  // namespace nfc::init::host
