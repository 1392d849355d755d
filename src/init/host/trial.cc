#include "init/host/trial.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/fs.h"
#include "base/log.h"
#include "init/common/modules.h"
#include "init/host/update.h"

namespace nfc::init::host {
namespace {

// Keeps a bundle that was written (or refused) for inspection, out of the way of the next boot.
void SetBundleAside(const char* from, const char* to) {
  auto st = fs::RemoveTree(to);
  if (st.ok() && std::rename(from, to) != 0) st = Error::Errno(std::string("rename ") + from);
  if (!st.ok()) log::Error("update: cannot set the bundle aside", {{"error", st.error().message()}});
  ::sync();
}

struct TrialMarker {
  Slot slot;
  std::string version;
};

std::optional<TrialMarker> ReadTrialMarker() {
  auto text = fs::ReadFile(kTrialMarker, 4096);
  if (!text.ok()) return std::nullopt;
  std::string_view t = *text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.remove_suffix(1);
  size_t sp = t.find(' ');
  auto slot = ParseSlot(t.substr(0, sp));
  if (!slot) {
    log::Error("update: unreadable trial marker; removed", {{"path", kTrialMarker}, {"content", *text}});
    ::unlink(kTrialMarker);
    return std::nullopt;
  }
  return TrialMarker{*slot, sp == std::string_view::npos ? "" : std::string(t.substr(sp + 1))};
}

void RemoveTrialMarker() {
  if (::unlink(kTrialMarker) != 0 && errno != ENOENT)
    log::Error("update: cannot remove the trial marker", {{"error", Error::Errno(kTrialMarker).message()}});
  ::sync();
}

// The verdict on a trial asked for before this boot of a committed slot.
void SettleEarlierTrial(TrialOutcome outcome, const std::optional<TrialMarker>& marker, Slot booted) {
  if (outcome == TrialOutcome::kFailed) {
    log::Error("update: the trial of slot " + std::string(SlotName(marker->slot)) +
                   " did not commit (its kernel failed before nomad-init, the agent failed, or the machine "
                   "was reset); staying on slot " +
                   std::string(SlotName(booted)) + "; the bundle is in " + kUpdateFailedDir,
               {{"version", marker->version}, {"slot", std::string(SlotName(marker->slot))}});
    SetBundleAside(kUpdateAppliedDir, kUpdateFailedDir);
  }
  if (outcome != TrialOutcome::kNone) RemoveTrialMarker();
}

// After the bundle is written: the marker, then the boot-once request. Returns why to reboot, or nullopt.
std::optional<std::string> AskForTrial(Slot target, const std::string& version) {
  std::string entry = BootEntryName(target, true);
  auto st = fs::WriteFileDurably(kTrialMarker, std::string(SlotName(target)) + " " + version + "\n", 0644);
  if (st.ok()) st = RequestBootOnce(kBootMount, entry);
  if (!st.ok()) {
    log::Error("update: slot written but its trial could not be requested; the bundle is in " +
                   std::string(kUpdateFailedDir),
               {{"entry", entry}, {"error", st.error().message()}});
    RemoveTrialMarker();
    SetBundleAside(kUpdateAppliedDir, kUpdateFailedDir);
    return std::nullopt;
  }
  return "update " + version + " written into slot " + std::string(SlotName(target)) + "; trial boot (" +
         entry + ", once)";
}

}  // namespace

std::optional<std::string> SlotUpdates::OnBoot(const HostOptions& opts, ModuleLoader* modules) {
  auto marker = ReadTrialMarker();
  auto plan = PlanBoot(opts.slot, opts.trial, fs::Exists(std::string(kUpdateDir) + "/manifest"),
                       marker ? std::optional(marker->slot) : std::nullopt);
  if (opts.slot) SettleEarlierTrial(plan.trial_outcome, marker, *opts.slot);
  if (!plan.revert_default_to && !plan.watch_trial && !plan.apply_bundle) return std::nullopt;
  if (modules) {
    for (const char* m : {"vfat", "nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859-1", "efivarfs"})
      (void)modules->Load(m);
  }
  auto st = MountBootPartition(kBootMount);
  if (!st.ok()) {
    log::Error("update: boot partition not mounted; slots unchanged", {{"error", st.error().message()}});
    return std::nullopt;
  }
  if (plan.revert_default_to) {
    // The default is the committed slot already (the trial was asked for once); an image whose default was
    // rewritten to the trial entry (an older nomad-init applied the bundle) gets it back here.
    st = SetBootDefault(kBootMount, *plan.revert_default_to);
    if (!st.ok())
      log::Error("update: trial boot could not restore the default", {{"error", st.error().message()}});
  }
  if (plan.clear_boot_once) {
    st = ClearBootOnce(kBootMount);
    if (!st.ok())
      log::Error("update: trial boot could not clear the boot-once request",
                 {{"error", st.error().message()}});
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
    SetBundleAside(kUpdateDir, kUpdateFailedDir);
    return std::nullopt;
  }
  // Set aside before the trial: a committed new slot must not find the same bundle pending again.
  SetBundleAside(kUpdateDir, kUpdateAppliedDir);
  return AskForTrial(target, *version);
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
    RemoveTrialMarker();
  }
  return std::nullopt;
}

}  // namespace nfc::init::host
