// Mounting for PID 1: the pseudo-filesystems every Linux userland expects, moving a new root into place, and
// taking everything down again at shutdown. Guest- and host-role agnostic.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace nfc::init {

// mount(2) with an error that names source, target and type.
Status Mount(const std::string& source, const std::string& target, const std::string& fstype,
             unsigned long flags, const std::string& data = {});
// mkdir -p; existing directories are fine.
Status MakeDirs(const std::string& path, mode_t mode = 0755);
// symlink(target, path) unless path already exists.
Status EnsureSymlink(const std::string& target, const std::string& path);
bool IsMountPoint(const std::string& path);

// How /dev is provided: the kernel's devtmpfs (a real machine or VM), or a private tmpfs populated with the
// basic nodes (when init runs inside a namespace of a host whose devtmpfs it must not modify).
enum class DevMode { kDevtmpfs, kTmpfs };

// Early mounts, before the root is known: /dev, /proc, /sys (each only if not mounted yet).
Status MountEarly(DevMode dev_mode);

// Everything below a (new) root, with root = "" for "/": proc, sys, dev (unless already there), devpts
// (private instance, /dev/ptmx pointing into it), /dev/shm, /dev/mqueue, /run, /sys/fs/cgroup (cgroup2), /tmp
// (directory only), and the /dev/fd, /dev/std{in,out,err}, /dev/core links. Missing mount points are created,
// so an image without /dev, /proc, /sys or /run works.
Status MountSystemFilesystems(const std::string& root, DevMode dev_mode);

// Makes root_dir the root of this mount namespace: MS_MOVE onto "/" and chroot, the way switch_root does it
// (an initramfs root cannot be pivot_root'ed). Mounts at /dev, /proc, /sys, /run are moved into root_dir
// first. When free_initramfs is set and "/" is a ramfs/tmpfs, its files are deleted first (staying on that
// filesystem) to give the memory back.
Status SwitchRoot(const std::string& root_dir, bool free_initramfs);

// The filesystem a device holds, from the magic numbers in its first kSuperblockProbeBytes (the types a guest
// kernel mounts): "ext4" (for ext2/3/4 alike: the ext4 driver mounts all three), "xfs", "btrfs", "f2fs",
// "vfat", "iso9660", "squashfs". Not a filesystem, but recognised so the error can say so: "swap",
// "crypto_LUKS". "" when nothing matches (an unformatted disk).
inline constexpr size_t kSuperblockProbeBytes = 0x10048;
std::string FilesystemFromSuperblock(std::string_view head);
// Reads the device's first bytes and names its filesystem (kNotFound: none nomad-init can mount).
Result<std::string> DetectFilesystem(const std::string& device);

struct MountEntry {
  std::string mount_point;
  std::string fstype;
  std::string source;
};
// /proc/self/mountinfo in mount order.
Result<std::vector<MountEntry>> ReadMounts();

struct UnmountOptions {
  int attempts = 5;  // per mount, 100 ms apart, while it is busy
  // What to do with a mount that stays busy: detach it lazily (the default: a guest's disks are the host's
  // files and are synced already), or remount it read-only, which flushes the journal and marks ext4 clean
  // even while a process holds a file open (a NomadOS host's data partition must survive the reboot).
  bool remount_busy_read_only = false;
  // tmpfs/ramfs hold nothing to flush and are skipped by default; a host unmounts them too, because Nomad
  // mounts tmpfs secrets directories inside allocation directories on the data partition, which would keep
  // it busy.
  bool include_tmpfs = false;
  // Logs every unmounted filesystem at info level (a host's console is the record of a clean shutdown).
  bool log_unmounted = false;
};

// Unmounts every mount except "/" in reverse mount order, retrying busy ones and then detaching them lazily
// or remounting them read-only (options); then remounts "/" read-only. Pseudo-filesystems are skipped
// (nothing to flush). Returns the mounts that could not be unmounted (for the report).
std::vector<std::string> UnmountAll(const UnmountOptions& options = {});

}  // namespace nfc::init
