#include "init/host/trial.h"

#include <cstdio>

#include "base/fs.h"
#include "base/log.h"
#include "init/common/modules.h"
#include "init/host/update.h"

namespace nfc::init::host {
namespace {

// Keeps a bundle that was written (or refused) for inspection, out of the way of the next boot.
void SetBundleAside(const char* to) {
  auto st = fs::RemoveTree(to);
  if (st.ok() && std::rename(kUpdateDir, to) != 0) st = Error::Errno(std::string("rename ") + kUpdateDir);
  if (!st.ok()) log::Error("update: cannot set the bundle aside", {{"error", st.error().message()}});
  ::sync();
}

}  // namespace

std::optional<std::string> SlotUpdates::OnBoot(const HostOptions& opts, ModuleLoader* modules) {
  auto plan = PlanBoot(opts.slot, opts.trial, fs::Exists(std::string(kUpdateDir) + "/manifest"));
  if (!plan.revert_default_to && !plan.watch_trial && !plan.apply_bundle) return std::nullopt;
  if (modules) {
    for (const char* m : {"vfat", "nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859-1"})
      (void)modules->Load(m);
  }
  auto st = MountBootPartition(kBootMount);
  if (!st.ok()) {
    log::Error("update: boot partition not mounted; slots unchanged", {{"error", st.error().message()}});
    return std::nullopt;
  }
  if (plan.revert_default_to) {
    // First of all: from here on, any failure (agent, kernel panic, power cut) boots the previous slot.
    st = SetBootDefault(kBootMount, *plan.revert_default_to);
    if (!st.ok())
      log::Error("update: trial boot could not restore the default", {{"error", st.error().message()}});
  }
  if (plan.watch_trial) {
    slot_ = *opts.slot;
    watch_.emplace(Clock::now(), opts.trial_healthy, opts.trial_timeout);
    log::Info("update: trial boot; the agent must run unbroken for a while before this slot is committed",
              {{"slot", std::string(SlotName(slot_))},
               {"healthy_after_s", static_cast<long long>(opts.trial_healthy.count())},
               {"timeout_s", static_cast<long long>(opts.trial_timeout.count())}});
  }
  if (!plan.apply_bundle) return std::nullopt;
  Slot target = *plan.apply_bundle;
  auto version = WriteBundleToSlot(kUpdateDir, target, kBootMount);
  if (!version.ok()) {
    log::Error("update: bundle refused; it stays in " + std::string(kUpdateFailedDir),
               {{"error", version.error().message()}});
    SetBundleAside(kUpdateFailedDir);
    return std::nullopt;
  }
  // Set aside before switching: a committed new slot must not find the same bundle pending again.
  SetBundleAside(kUpdateAppliedDir);
  st = SetBootDefault(kBootMount, BootEntryName(target, true));
  if (!st.ok()) {
    log::Error("update: slot written but the trial entry not set", {{"error", st.error().message()}});
    return std::nullopt;
  }
  return "update " + *version + " written into slot " + std::string(SlotName(target)) + "; trial boot";
}

SlotUpdates::Clock::time_point SlotUpdates::Deadline(Clock::time_point now,
                                                     std::optional<Clock::time_point> running_since) const {
  return watch_ ? watch_->NextCheck(now, running_since) : Clock::time_point::max();
}

std::optional<std::string> SlotUpdates::Check(Clock::time_point now,
                                              std::optional<Clock::time_point> running_since,
                                              int agent_exits) {
  if (!watch_) return std::nullopt;
  auto verdict = watch_->Observe(now, running_since, agent_exits);
  if (verdict == TrialWatch::Verdict::kWaiting) return std::nullopt;
  watch_.reset();
  std::string slot(SlotName(slot_));
  if (verdict == TrialWatch::Verdict::kFailed) {
    log::Error("update: trial boot failed: the agent did not stay up; rebooting into the previous slot",
               {{"slot", slot}, {"agent_exits", agent_exits}});
    return "trial of slot " + slot + " failed";
  }
  auto st = SetBootDefault(kBootMount, BootEntryName(slot_, false));
  if (!st.ok()) {
    log::Error("update: agent healthy but the commit failed; the next boot is the previous slot",
               {{"slot", slot}, {"error", st.error().message()}});
  } else {
    log::Info("update: committed; slot " + slot + " is the default now", {{"slot", slot}});
  }
  return std::nullopt;
}

}  // namespace nfc::init::host
