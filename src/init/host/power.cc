#include "init/host/power.h"

#include <fcntl.h>
#include <linux/input.h>
#include <linux/reboot.h>
#include <signal.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/log.h"
#include "init/common/shutdown.h"
#include "init/host/mounts.h"

namespace nfc::init::host {

std::string_view PowerActionName(PowerAction action) {
  switch (action) {
    case PowerAction::kPowerOff:
      return "poweroff";
    case PowerAction::kReboot:
      return "reboot";
    case PowerAction::kHalt:
      return "halt";
  }
  return "?";
}

std::optional<PowerAction> PowerActionForSignal(int sig) {
  switch (sig) {
    case SIGTERM:
    case SIGINT:
      return PowerAction::kReboot;
    case SIGUSR2:
    case SIGPWR:
      return PowerAction::kPowerOff;
    case SIGUSR1:
      return PowerAction::kHalt;
    default:
      return std::nullopt;
  }
}

bool CapabilityHasBit(std::string_view bitmap, int bit) {
  std::vector<std::string> words;
  std::string cur;
  for (char c : bitmap) {
    if (c == ' ' || c == '\n') {
      if (!cur.empty()) words.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) words.push_back(cur);
  constexpr int kBits = sizeof(unsigned long) * 8;
  size_t index =
      static_cast<size_t>(bit / kBits);  // word index counted from the least significant (last) word
  if (index >= words.size()) return false;
  unsigned long w = std::stoul(words[words.size() - 1 - index], nullptr, 16);
  return (w >> (bit % kBits)) & 1;
}

std::vector<UniqueFd> OpenPowerButtons() {
  std::vector<UniqueFd> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/input", ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("event", 0) != 0) continue;
    std::ifstream caps(e.path() / "device/capabilities/key");
    std::string bitmap;
    std::getline(caps, bitmap);
    if (!CapabilityHasBit(bitmap, KEY_POWER)) continue;
    std::string dev = "/dev/input/" + name;
    UniqueFd fd(::open(dev.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
      log::Warn("cannot open power button", {{"device", dev}, {"errno", errno}});
      continue;
    }
    std::ifstream n(e.path() / "device/name");
    std::string label;
    std::getline(n, label);
    log::Info("watching power button", {{"device", dev}, {"name", label}});
    out.push_back(std::move(fd));
  }
  return out;
}

bool ReadPowerButton(int fd) {
  bool pressed = false;
  input_event ev[16];
  while (true) {
    ssize_t n = ::read(fd, ev, sizeof ev);
    if (n <= 0) break;
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(input_event); i++) {
      if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1) pressed = true;
    }
  }
  return pressed;
}

[[noreturn]] void FinishShutdown(PowerAction action, std::chrono::milliseconds grace) {
  log::Info("stopping remaining processes");
  TerminateAllProcesses(grace, nullptr);
  UnmountForShutdown();
  log::Info("filesystems unmounted; " + std::string(PowerActionName(action)));
  ::sync();
  int cmd = action == PowerAction::kReboot ? RB_AUTOBOOT
            : action == PowerAction::kHalt ? RB_HALT_SYSTEM
                                           : RB_POWER_OFF;
  ::reboot(cmd);
  // reboot(2) returned: nothing sensible is left to do, and PID 1 must not exit (that panics the kernel).
  log::Error("reboot(2) failed", {{"errno", errno}});
  while (true) ::pause();
}

}  // namespace nfc::init::host
