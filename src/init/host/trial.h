// The host role's side of safe updates, as PID 1 sees it: at boot, apply a pending bundle (then reboot into
// its trial) or begin a trial (revert the default first); while the trial runs, judge the agent and commit
// the slot or ask for a reboot into the previous one. Decisions: slots.h; I/O: update.h; design:
// docs/nomados-updates.md.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "init/host/cmdline.h"
#include "init/host/slots.h"

namespace nfc::init {
class ModuleLoader;
}

namespace nfc::init::host {

inline constexpr const char* kBootMount = "/run/nomados/boot";

class SlotUpdates {
 public:
  using Clock = std::chrono::steady_clock;
  // After the data partition is mounted, before the agent starts. Returns why the machine must reboot now (a
  // bundle was written and its trial is the next boot), or nullopt to boot on.
  std::optional<std::string> OnBoot(const HostOptions& opts, ModuleLoader* modules);
  bool trial_running() const { return watch_.has_value(); }
  // When the trial's verdict can next change (time_point::max() without a trial).
  Clock::time_point Deadline(Clock::time_point now,
                             std::optional<Clock::time_point> agent_running_since) const;
  // Judges the trial; returns why to reboot (it failed), or nullopt (still waiting, or committed).
  std::optional<std::string> Check(Clock::time_point now,
                                   std::optional<Clock::time_point> agent_running_since, int agent_exits);

 private:
  std::optional<TrialWatch> watch_;
  Slot slot_ = Slot::kA;
};

}  // namespace nfc::init::host
