// A/B system slots and the one trial boot of an update: the pure decisions (no I/O), so they are unit tested.
// The I/O (boot partition, block devices, bundle files) is in update.h. Design: docs/nomados-updates.md.
//
// The boot loader configurations on the boot partition hold four entries: a, b, a-trial and b-trial (the
// trial ones add nomados.trial=1). Their default names the committed slot. An update writes the inactive slot
// and asks the loader that booted this machine to boot "<new>-trial" once (boot_once.h); the loader forgets
// the request as it honours it, so any failure before nomad-init (panic=10, a reset after a hang) and any
// later one boots the committed slot again. The trial's nomad-init waits for the agent to be healthy and only
// then makes the new slot the default (commit). Unhealthy: it reboots, into the old slot, whose nomad-init
// reports the trial as failed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace nfc::init::host {

enum class Slot { kA, kB };

std::string_view SlotName(Slot slot);  // "a", "b"
std::optional<Slot> ParseSlot(std::string_view name);
Slot OtherSlot(Slot slot);
// GPT partition name of a slot's system partition: nomados-system-a, nomados-system-b.
std::string SystemPartitionName(Slot slot);
// Boot loader entry name: "a", "b", "a-trial", "b-trial".
std::string BootEntryName(Slot slot, bool trial);

// The boot loader files nomad-init edits, all on the boot partition.
enum class BootConfigKind {
  kSyslinux,     // syslinux/syslinux.cfg: "DEFAULT <entry>"
  kSystemdBoot,  // loader/loader.conf: "default <entry>.conf"
  kGrub,         // EFI/debian/grub.cfg (--secure-boot): "set default=<entry>" (menuentry ids)
};

// The entry a configuration boots by default, or an error naming the file kind when it has no default line.
Result<std::string> DefaultBootEntry(std::string_view config, BootConfigKind kind);
// The configuration with its default line naming `entry`; everything else is kept byte for byte.
Result<std::string> WithDefaultBootEntry(std::string_view config, BootConfigKind kind,
                                         std::string_view entry);

// What nomad-init does about slots at boot, decided from the command line and what it finds.
enum class TrialOutcome {
  kNone,       // no trial was asked for since the last boot of a committed slot
  kCommitted,  // the marker names the booted (committed) slot: the commit happened, drop the marker
  kFailed,     // the marker names the other slot and this is not its trial: it never committed
};
struct BootPlan {
  // The default entry to make sure of before anything else on a trial boot (the committed slot), if any.
  std::optional<std::string> revert_default_to;
  bool clear_boot_once = false;  // a trial boot: drop a boot-once request the loader left behind
  bool watch_trial = false;      // judge the agent's health, then commit or reboot
  TrialOutcome trial_outcome = TrialOutcome::kNone;
  std::optional<Slot> apply_bundle;  // write the pending bundle into this (inactive) slot
};
// booted: nomados.slot (nullopt: an image without slots, nothing to do); trial: nomados.trial=1;
// bundle_pending: a bundle waits on the data partition; trial_marker: the slot an update asked a trial of
// (the marker written before the boot-once request, removed by the commit). A trial boot never applies a
// bundle (one change at a time: it is applied on the next boot of a committed slot).
BootPlan PlanBoot(std::optional<Slot> booted, bool trial, bool bundle_pending,
                  std::optional<Slot> trial_marker = std::nullopt);

// An update bundle's manifest (written by `nomados bundle`):
//   nomados-bundle 1
//   version <text>
//   file <name> <size> <sha256 hex>      (system.ext4, vmlinuz, initrd.img; each exactly once)
struct BundleFile {
  std::string name;
  uint64_t size = 0;
  std::string sha256;  // 64 lower-case hex digits
};
struct BundleManifest {
  std::string version;
  std::vector<BundleFile> files;
  const BundleFile* Find(std::string_view name) const;
};
Result<BundleManifest> ParseBundleManifest(std::string_view text);

// Judges a trial boot: healthy once the agent has run without exiting for `healthy_after`; failed when that
// has not happened by `timeout` after the trial began, or when the agent exited `max_exits` times.
class TrialWatch {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Verdict { kWaiting, kHealthy, kFailed };
  TrialWatch(Clock::time_point start, std::chrono::seconds healthy_after, std::chrono::seconds timeout,
             int max_exits = 3)
      : start_(start), healthy_after_(healthy_after), timeout_(timeout), max_exits_(max_exits) {}
  // running_since: when the agent's current run started (nullopt: not running); exits: how often it exited.
  Verdict Observe(Clock::time_point now, std::optional<Clock::time_point> running_since, int exits) const;
  // When Observe() should next be asked (the earliest moment its verdict can change).
  Clock::time_point NextCheck(Clock::time_point now, std::optional<Clock::time_point> running_since) const;

 private:
  Clock::time_point start_;
  std::chrono::seconds healthy_after_;
  std::chrono::seconds timeout_;
  int max_exits_;
};

}  // namespace nfc::init::host
