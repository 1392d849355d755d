#include "init/host/mounts.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "base/log.h"

namespace nfc::init::host {
namespace {

bool IsMountPoint(const char* path) {
  struct stat st, parent;
  std::string up = std::string(path) + "/..";
  if (::stat(path, &st) != 0 || ::stat(up.c_str(), &parent) != 0) return false;
  return st.st_dev != parent.st_dev || st.st_ino == parent.st_ino;
}

// Deletes the initramfs' files (recursively, staying on its device) so its memory is returned.
void DeleteTree(int dirfd, dev_t dev) {
  DIR* d = fdopendir(dirfd);
  if (!d) {
    ::close(dirfd);
    return;
  }
  while (dirent* e = readdir(d)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev) continue;
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (sub >= 0) DeleteTree(sub, dev);
      unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
    } else {
      unlinkat(dirfd, e->d_name, 0);
    }
  }
  closedir(d);
}

struct MountEntry {
  std::string target;
  std::string type;
};

std::vector<MountEntry> ReadMounts() {
  std::vector<MountEntry> out;
  std::ifstream f("/proc/self/mounts");
  for (std::string line; std::getline(f, line);) {
    std::istringstream w(line);
    MountEntry e;
    std::string source;
    w >> source >> e.target >> e.type;
    // /proc/mounts escapes spaces etc. as octal; our own mount points have none, Nomad's may.
    std::string t;
    for (size_t i = 0; i < e.target.size(); i++) {
      if (e.target[i] == '\\' && i + 3 < e.target.size()) {
        t.push_back(static_cast<char>(std::stoi(e.target.substr(i + 1, 3), nullptr, 8)));
        i += 3;
      } else {
        t.push_back(e.target[i]);
      }
    }
    e.target = t;
    out.push_back(e);
  }
  return out;
}

}  // namespace

Status MountIfAbsent(const char* source, const char* target, const char* type, unsigned long flags,
                     const char* data) {
  ::mkdir(target, 0755);  // fails harmlessly when it exists or / is read-only (then it must exist)
  if (IsMountPoint(target)) return Ok();
  if (::mount(source, target, type, flags, data) != 0) {
    return Error::Errno(std::string("mount ") + type + " on " + target);
  }
  return Ok();
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
  if (::mount(device.c_str(), "/sysroot", "ext4", MS_RDONLY | MS_NODEV, nullptr) != 0) {
    return Error::Errno("mount " + device + " (ext4, read-only) on /sysroot");
  }
  for (const char* m : {"/dev", "/proc", "/sys"}) {
    std::string target = std::string("/sysroot") + m;
    if (::mount(m, target.c_str(), nullptr, MS_MOVE, nullptr) != 0) {
      return Error::Errno(std::string("move ") + m + " to " + target);
    }
  }
  if (::chdir("/sysroot") != 0) return Error::Errno("chdir /sysroot");
  struct stat root_st;
  if (::stat("/", &root_st) != 0) return Error::Errno("stat /");
  int rootfd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd >= 0) DeleteTree(rootfd, root_st.st_dev);
  if (::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0) return Error::Errno("move /sysroot to /");
  if (::chroot(".") != 0) return Error::Errno("chroot");
  if (::chdir("/") != 0) return Error::Errno("chdir /");
  return Ok();
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

void UnmountAll(std::chrono::milliseconds budget) {
  const std::vector<std::string> keep = {"/", "/dev", "/proc", "/sys"};
  auto deadline = std::chrono::steady_clock::now() + budget;
  ::sync();
  for (int attempt = 0;; attempt++) {
    auto mounts = ReadMounts();
    int busy = 0;
    for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
      if (std::find(keep.begin(), keep.end(), it->target) != keep.end()) continue;
      if (it->target.rfind("/dev/", 0) == 0 || it->target.rfind("/proc/", 0) == 0 ||
          (it->target.rfind("/sys/", 0) == 0)) {
        continue;  // pseudo-filesystems hold no data
      }
      if (::umount2(it->target.c_str(), 0) == 0) {
        log::Info("unmounted", {{"path", it->target}, {"type", it->type}});
      } else if (errno != EINVAL && errno != ENOENT) {
        busy++;
      }
    }
    if (busy == 0) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      // Still busy: read-only remounts flush and mark ext4 clean even when something holds a file open.
      for (const auto& m : ReadMounts()) {
        if (m.type != "ext4" || m.target == "/") continue;
        if (::mount(nullptr, m.target.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0) {
          log::Warn("busy; remounted read-only", {{"path", m.target}});
        } else {
          log::Error("busy; could not remount read-only", {{"path", m.target}, {"errno", errno}});
        }
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY, nullptr);
  ::sync();
}

}  // namespace nfc::init::host
