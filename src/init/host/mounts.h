// Filesystems of a NomadOS machine: pseudo-filesystems, the read-only system partition (found and switched to
// from the initramfs), the writable data partition, and taking them all down cleanly at shutdown.
//
// Layout: /            system partition, ext4, read-only
//         /data        data partition, ext4, read-write (Nomad's data_dir lives under /var = /data/var)
//         /var         bind mount of /data/var
//         /run, /tmp   tmpfs
#pragma once

#include <string>

#include "base/error.h"

namespace nfc::init::host {

// Mounts a filesystem unless something is already mounted there; creates the mount point if it can.
Status MountIfAbsent(const char* source, const char* target, const char* type, unsigned long flags,
                     const char* data = nullptr);

// The kernel's early set: devtmpfs /dev, proc, sysfs.
Status MountEarly();
// Everything else a Nomad host needs (devpts, shm, mqueue, run, tmp, cgroup2 with controllers enabled).
Status MountSystem();

// The block device (/dev/NAME) of the GPT partition named `partname`, read from /sys/class/block/*/uevent
// (PARTNAME=): devtmpfs has no /dev/disk/by-partlabel, that is udev's job.
Result<std::string> FindPartitionByName(const std::string& partname,
                                        const std::string& sys_class_block = "/sys/class/block");

// From the initramfs: mounts `device` read-only at /sysroot, moves /dev /proc /sys there, frees the initramfs
// (its files are deleted, as switch_root does) and makes /sysroot the root. The caller then execs the real
// init.
Status SwitchToSystemRoot(const std::string& device);

// Mounts the data partition at /data (read-write) and binds /data/var onto /var. If the partition is missing,
// mounts a tmpfs instead and returns an error describing it (the node still comes up, without persistence).
Status MountData(const std::string& device);

// Shutdown: init/common's UnmountAll with the host's policy: memory filesystems are unmounted too (Nomad's
// tmpfs secrets directories live on the data partition), busy mounts are retried for up to 5 s and then
// remounted read-only instead of being detached lazily, so ext4 still flushes its journal and stays clean.
void UnmountForShutdown();

}  // namespace nfc::init::host
