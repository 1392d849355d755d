// Safe updates, the I/O half (the decisions are in slots.h): the boot partition's loader configurations, and
// writing an update bundle into the inactive slot. Design and power-cut analysis: docs/nomados-updates.md.
#pragma once

#include <string>

#include "base/error.h"
#include "init/host/slots.h"

namespace nfc::init::host {

// Where a bundle waits (on the data partition), and where it goes once written (or refused), for inspection.
inline constexpr const char* kUpdateDir = "/var/lib/nomados/update";
inline constexpr const char* kUpdateAppliedDir = "/var/lib/nomados/update.applied";
inline constexpr const char* kUpdateFailedDir = "/var/lib/nomados/update.failed";
// "<slot> <version>": a trial of that slot was asked for; removed by its commit. Found on a committed slot's
// boot, it says the trial never committed (its kernel failed before nomad-init, the agent failed, or a
// reset).
inline constexpr const char* kTrialMarker = "/var/lib/nomados/update.trial";

// Mounts the boot partition (GPT name nomados-boot, vfat) read-write at `mount_point`.
Status MountBootPartition(const std::string& mount_point);

// Makes `entry` the default of every loader configuration present under boot_dir (syslinux.cfg, loader.conf,
// grub.cfg), each replaced atomically and durably. An error if none is present.
Status SetBootDefault(const std::string& boot_dir, const std::string& entry);

// Asks the loader that booted this machine to boot `entry` once, the default unchanged: under UEFI the
// EFI variable LoaderEntryOneShot (systemd-boot: loader/loader.conf present) and/or grubenv's next_entry
// (GRUB: EFI/debian/grub.cfg present); under BIOS the boot-once record of syslinux's ADV
// (syslinux/ldlinux.sys, written in place: the loader writes those sectors back itself). Each written
// durably. An error when no mechanism applies or one fails.
Status RequestBootOnce(const std::string& boot_dir, const std::string& entry);
// Drops any boot-once request still there (a loader that did not clear its own); logs what it did.
Status ClearBootOnce(const std::string& boot_dir);

// Writes the bundle in bundle_dir into `slot`: system.ext4 onto the slot's partition and vmlinuz/initrd.img
// into boot_dir/<slot>/, each checked against the manifest (size, and sha256 of what was read back from the
// partition). Does not change the boot default. Returns the bundle's version.
Result<std::string> WriteBundleToSlot(const std::string& bundle_dir, Slot slot, const std::string& boot_dir);

}  // namespace nfc::init::host
