#include "init/host/mounts.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/log.h"
#include "init/common/mounts.h"

namespace nfc::init::host {

Status MountIfAbsent(const char* source, const char* target, const char* type, unsigned long flags,
                     const char* data) {
  ::mkdir(target, 0755);  // fails harmlessly when it exists or / is read-only (then it must exist)
  if (IsMountPoint(target)) return Ok();
  return Mount(source, target, type, flags, data ? data : "");
}

Status MountEarly() {
  constexpr unsigned long kNoDevExec = MS_NOSUID | MS_NOEXEC | MS_NODEV;
  NFC_RETURN_IF_ERROR(MountIfAbsent("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"));
  NFC_RETURN_IF_ERROR(MountIfAbsent("proc", "/proc", "proc", kNoDevExec));
  NFC_RETURN_IF_ERROR(MountIfAbsent("sysfs", "/sys", "sysfs", kNoDevExec));
  return Ok();
}

Status MountSystem() {
  constexpr unsigned long kNoDevExec = MS_NOSUID | MS_NOEXEC | MS_NODEV;
  NFC_RETURN_IF_ERROR(MountEarly());
  NFC_RETURN_IF_ERROR(
      MountIfAbsent("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"));
  NFC_RETURN_IF_ERROR(MountIfAbsent("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  NFC_RETURN_IF_ERROR(MountIfAbsent("mqueue", "/dev/mqueue", "mqueue", kNoDevExec));
  NFC_RETURN_IF_ERROR(MountIfAbsent("run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  NFC_RETURN_IF_ERROR(MountIfAbsent("tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  NFC_RETURN_IF_ERROR(MountIfAbsent("cgroup2", "/sys/fs/cgroup", "cgroup2", kNoDevExec, "nsdelegate"));
  // Optional ones: a missing feature must not stop the node.
  for (auto [src, dst, type] : {std::tuple{"bpf", "/sys/fs/bpf", "bpf"},
                                std::tuple{"securityfs", "/sys/kernel/security", "securityfs"},
                                std::tuple{"debugfs", "/sys/kernel/debug", "debugfs"}}) {
    auto st = MountIfAbsent(src, dst, type, kNoDevExec);
    if (!st.ok()) log::Debug("optional mount skipped", {{"error", st.error().message()}});
  }
  // Nomad's exec/docker drivers create child cgroups with controllers: enable every controller the kernel
  // offers at the root (the root cgroup is exempt from the no-internal-processes rule).
  std::ifstream avail("/sys/fs/cgroup/cgroup.controllers");
  std::string controller;
  while (avail >> controller) {
    int fd = ::open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
    if (fd < 0) break;
    std::string w = "+" + controller;
    if (::write(fd, w.data(), w.size()) < 0)
      log::Debug("cgroup controller not enabled", {{"controller", controller}, {"errno", errno}});
    ::close(fd);
  }
  for (auto [link, target] :
       {std::pair{"/dev/fd", "/proc/self/fd"}, std::pair{"/dev/stdin", "/proc/self/fd/0"},
        std::pair{"/dev/stdout", "/proc/self/fd/1"}, std::pair{"/dev/stderr", "/proc/self/fd/2"}}) {
    ::symlink(target, link);  // EEXIST on the second boot stage is fine
  }
  ::mkdir("/run/nomados", 0755);
  return Ok();
}

Result<std::string> FindPartitionByName(const std::string& partname, const std::string& sys_class_block) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(sys_class_block, ec)) {
    std::ifstream f(e.path() / "uevent");
    std::string line, devname, name;
    while (std::getline(f, line)) {
      if (line.rfind("DEVNAME=", 0) == 0) devname = line.substr(8);
      if (line.rfind("PARTNAME=", 0) == 0) name = line.substr(9);
    }
    if (!devname.empty() && name == partname) return "/dev/" + devname;
  }
  return Error::NotFound("no block device with GPT partition name '" + partname + "'");
}

Status SwitchToSystemRoot(const std::string& device) {
  struct statfs root_fs;
  if (statfs("/", &root_fs) != 0) return Error::Errno("statfs /");
  if (root_fs.f_type != RAMFS_MAGIC && root_fs.f_type != TMPFS_MAGIC) {
    return Error::FailedPrecondition("switch root: / is not an initramfs");
  }
  ::mkdir("/sysroot", 0755);
  NFC_RETURN_IF_ERROR(Mount(device, "/sysroot", "ext4", MS_RDONLY | MS_NODEV));
  // Moves /dev, /proc and /sys along, deletes the initramfs' files (its memory is returned) and makes
  // /sysroot the root.
  return SwitchRoot("/sysroot", /*free_initramfs=*/true);
}

Status MountData(const std::string& device) {
  Status result = Ok();
  if (::mount(device.c_str(), "/data", "ext4", MS_NODEV | MS_NOATIME, nullptr) != 0) {
    result = Error::Errno("mount " + device + " (ext4) on /data");
    if (::mount("data", "/data", "tmpfs", MS_NODEV, "mode=0755") != 0) {
      return Error::Errno("mount tmpfs on /data").Context(result.error().message());
    }
  }
  for (const char* d : {"/data/var", "/data/var/lib", "/data/var/log", "/data/var/lib/nomad",
                        "/data/var/lib/nomados", "/data/var/log/nomad"}) {
    if (::mkdir(d, 0755) != 0 && errno != EEXIST) return Error::Errno(std::string("mkdir ") + d);
  }
  ::chmod("/data/var/lib/nomad", 0711);
  if (::mount("/data/var", "/var", nullptr, MS_BIND, nullptr) != 0)
    return Error::Errno("bind /data/var on /var");
  return result;
}

void UnmountForShutdown() {
  ::sync();
  for (const auto& m : UnmountAll(
           {.attempts = 50, .remount_busy_read_only = true, .include_tmpfs = true, .log_unmounted = true}))
    log::Warn("filesystem left mounted", {{"path", m}});
  ::sync();
}

}  // namespace nfc::init::host
