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

// Mounts the boot partition (GPT name nomados-boot, vfat) read-write at `mount_point`.
Status MountBootPartition(const std::string& mount_point);

// Makes `entry` the default of every loader configuration present under boot_dir (syslinux.cfg, loader.conf,
// grub.cfg), each replaced atomically and durably. An error if none is present.
Status SetBootDefault(const std::string& boot_dir, const std::string& entry);

// Writes the bundle in bundle_dir into `slot`: system.ext4 onto the slot's partition and vmlinuz/initrd.img
// into boot_dir/<slot>/, each checked against the manifest (size, and sha256 of what was read back from the
// partition). Does not change the boot default. Returns the bundle's version.
Result<std::string> WriteBundleToSlot(const std::string& bundle_dir, Slot slot, const std::string& boot_dir);

}  // namespace nfc::init::host
