#include "init/common/mounts.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <sstream>
#include <thread>

#include "base/log.h"
#include "base/unique_fd.h"
#include "init/common/system.h"

namespace nfc::init {
namespace {

// Removes everything below dirfd that lives on dev, without crossing into other filesystems (the new root is
// mounted below the initramfs we are emptying).
void RemoveTree(int dirfd, dev_t dev) {
  DIR* dir = fdopendir(dirfd);
  if (!dir) {
    ::close(dirfd);
    return;
  }
  while (dirent* e = readdir(dir)) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev) continue;
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        RemoveTree(sub, dev);
        unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
      }
    } else {
      unlinkat(dirfd, e->d_name, 0);
    }
  }
  closedir(dir);
}

std::string Unescape(const std::string& s) {
  // mountinfo escapes space, tab, newline and backslash as \ooo.
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() + 0 && isdigit(s[i + 1]) && isdigit(s[i + 2]) && isdigit(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Status MakeNode(const std::string& path, mode_t mode, unsigned major, unsigned minor) {
  if (::mknod(path.c_str(), mode, makedev(major, minor)) != 0 && errno != EEXIST) {
    return Error::Errno("mknod " + path);
  }
  ::chmod(path.c_str(), mode & 07777);
  return Ok();
}

}  // namespace

Status Mount(const std::string& source, const std::string& target, const std::string& fstype,
             unsigned long flags, const std::string& data) {
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(),
              fstype.empty() ? nullptr : fstype.c_str(), flags, data.empty() ? nullptr : data.c_str()) != 0) {
    std::string what = "mount " + (source.empty() ? std::string("none") : source) + " on " + target;
    if (!fstype.empty()) what += " type " + fstype;
    if (!data.empty()) what += " (" + data + ")";
    return Error::Errno(what);
  }
  return Ok();
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return Ok();
  std::string cur;
  size_t i = 0;
  while (i <= path.size()) {
    size_t next = path.find('/', i);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (!cur.empty() && ::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
      return Error::Errno("mkdir " + cur);
    i = next + 1;
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error::Errno("stat " + path);
  if (!S_ISDIR(st.st_mode)) return Error::FailedPrecondition(path + " exists and is not a directory");
  return Ok();
}

Status EnsureSymlink(const std::string& target, const std::string& path) {
  if (::symlink(target.c_str(), path.c_str()) != 0 && errno != EEXIST) return Error::Errno("symlink " + path);
  return Ok();
}

bool IsMountPoint(const std::string& path) {
  struct stat a, b;
  if (::stat(path.c_str(), &a) != 0) return false;
  if (::stat((path + "/..").c_str(), &b) != 0) return false;
  return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

static Status MountDev(const std::string& dev, DevMode mode) {
  NFC_RETURN_IF_ERROR(MakeDirs(dev));
  if (mode == DevMode::kDevtmpfs)
    return Mount("devtmpfs", dev, "devtmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755");
  NFC_RETURN_IF_ERROR(Mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k"));
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  static const Node kNodes[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                                {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (const auto& n : kNodes)
    NFC_RETURN_IF_ERROR(MakeNode(dev + "/" + n.name, S_IFCHR | 0666, n.major, n.minor));
  return Ok();
}

Status MountEarly(DevMode dev_mode) {
  if (!IsMountPoint("/dev") || dev_mode == DevMode::kDevtmpfs) {
    // In an initramfs /dev is a plain directory; CONFIG_DEVTMPFS_MOUNT is off in Debian's cloud kernel.
    if (!IsMountPoint("/dev")) NFC_RETURN_IF_ERROR(MountDev("/dev", dev_mode));
  }
  if (!IsMountPoint("/proc")) {
    NFC_RETURN_IF_ERROR(MakeDirs("/proc"));
    NFC_RETURN_IF_ERROR(Mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  }
  if (!IsMountPoint("/sys")) {
    NFC_RETURN_IF_ERROR(MakeDirs("/sys"));
    NFC_RETURN_IF_ERROR(Mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  }
  return Ok();
}

Status MountSystemFilesystems(const std::string& root, DevMode dev_mode) {
  const std::string r = root;
  auto ensure = [&](const std::string& path, const char* source, const char* type, unsigned long flags,
                    const std::string& data, mode_t mode = 0755) -> Status {
    std::string target = r + path;
    if (IsMountPoint(target)) return Ok();
    NFC_RETURN_IF_ERROR(MakeDirs(target, mode));
    return Mount(source, target, type, flags, data);
  };
  NFC_RETURN_IF_ERROR(ensure("/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  NFC_RETURN_IF_ERROR(ensure("/sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  if (!IsMountPoint(r + "/dev")) NFC_RETURN_IF_ERROR(MountDev(r + "/dev", dev_mode));
  NFC_RETURN_IF_ERROR(ensure("/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                             "newinstance,ptmxmode=0666,mode=0620,gid=5"));
  // With a private devpts instance, /dev/ptmx must lead into it; devtmpfs's own ptmx node would open the
  // initial instance.
  std::string ptmx = r + "/dev/ptmx";
  struct stat st;
  if (::lstat(ptmx.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) ::unlink(ptmx.c_str());
  NFC_RETURN_IF_ERROR(EnsureSymlink("pts/ptmx", ptmx));
  NFC_RETURN_IF_ERROR(ensure("/dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777));
  NFC_RETURN_IF_ERROR(ensure("/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  NFC_RETURN_IF_ERROR(ensure("/run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
  auto cgroup =
      ensure("/sys/fs/cgroup", "cgroup2", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
  if (!cgroup.ok()) log::Warn("cgroup2 not mounted", {{"error", cgroup.error().ToString()}});
  NFC_RETURN_IF_ERROR(EnsureSymlink("/proc/self/fd", r + "/dev/fd"));
  NFC_RETURN_IF_ERROR(EnsureSymlink("/proc/self/fd/0", r + "/dev/stdin"));
  NFC_RETURN_IF_ERROR(EnsureSymlink("/proc/self/fd/1", r + "/dev/stdout"));
  NFC_RETURN_IF_ERROR(EnsureSymlink("/proc/self/fd/2", r + "/dev/stderr"));
  NFC_RETURN_IF_ERROR(EnsureSymlink("/proc/kcore", r + "/dev/core"));
  // /tmp comes from the image (on the writable overlay); images without it still get a sticky one.
  if (::mkdir((r + "/tmp").c_str(), 01777) == 0) ::chmod((r + "/tmp").c_str(), 01777);
  return Ok();
}

Status SwitchRoot(const std::string& root_dir, bool free_initramfs) {
  for (const char* m : {"/dev", "/proc", "/sys", "/run"}) {
    if (!IsMountPoint(m)) continue;
    std::string target = root_dir + m;
    NFC_RETURN_IF_ERROR(MakeDirs(target));
    if (IsMountPoint(target)) {
      ::umount2(m, MNT_DETACH);  // the new root already has its own
      continue;
    }
    NFC_RETURN_IF_ERROR(Mount(m, target, "", MS_MOVE));
  }
  if (::chdir(root_dir.c_str()) != 0) return Error::Errno("chdir " + root_dir);
  if (free_initramfs) {
    struct statfs sfs;
    struct stat st;
    if (::statfs("/", &sfs) == 0 && (sfs.f_type == RAMFS_MAGIC || sfs.f_type == TMPFS_MAGIC) &&
        ::stat("/", &st) == 0) {
      int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) RemoveTree(fd, st.st_dev);
    }
  }
  NFC_RETURN_IF_ERROR(Mount(".", "/", "", MS_MOVE));
  if (::chroot(".") != 0) return Error::Errno("chroot " + root_dir);
  if (::chdir("/") != 0) return Error::Errno("chdir /");
  return Ok();
}

Result<std::vector<MountEntry>> ReadMounts() {
  NFC_ASSIGN_OR_RETURN(std::string content, ReadFile("/proc/self/mountinfo"));
  std::vector<MountEntry> out;
  std::istringstream in(content);
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    std::istringstream f(line);
    std::string id, parent, devno, root, mp, opts, tok;
    f >> id >> parent >> devno >> root >> mp >> opts;
    while (f >> tok && tok != "-") {
    }
    MountEntry e;
    e.mount_point = Unescape(mp);
    f >> e.fstype >> e.source;
    e.source = Unescape(e.source);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> UnmountAll(const UnmountOptions& options) {
  static const std::set<std::string> kPseudo = {
      "proc",    "sysfs",      "devtmpfs", "devpts", "mqueue",   "cgroup2", "cgroup",      "debugfs",
      "tracefs", "securityfs", "pstore",   "bpf",    "configfs", "fusectl", "binfmt_misc", "hugetlbfs"};
  static const std::set<std::string> kMemory = {"tmpfs", "ramfs"};  // nothing to flush
  std::vector<std::string> stuck;
  auto mounts = ReadMounts();
  if (!mounts.ok()) {
    log::Warn("cannot list mounts", {{"error", mounts.error().ToString()}});
    return stuck;
  }
  for (auto it = mounts->rbegin(); it != mounts->rend(); ++it) {
    if (it->mount_point == "/" || kPseudo.count(it->fstype)) continue;
    if (kMemory.count(it->fstype) && !options.include_tmpfs) continue;
    bool done = false;
    for (int i = 0; i < options.attempts && !done; i++) {
      if (::umount2(it->mount_point.c_str(), 0) == 0 || errno == EINVAL || errno == ENOENT) {
        done = true;
      } else if (errno == EBUSY) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } else {
        break;
      }
    }
    if (done) {
      if (options.log_unmounted) log::Info("unmounted", {{"path", it->mount_point}, {"type", it->fstype}});
      continue;
    }
    int err = errno;
    stuck.push_back(it->mount_point);
    if (options.remount_busy_read_only) {
      if (::mount(nullptr, it->mount_point.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0) {
        log::Warn("busy; remounted read-only", {{"mount", it->mount_point}});
      } else {
        log::Error("busy; could not remount read-only",
                   {{"mount", it->mount_point}, {"error", strerror(errno)}});
      }
      continue;
    }
    log::Warn("unmount failed, detaching lazily", {{"mount", it->mount_point}, {"error", strerror(err)}});
    ::umount2(it->mount_point.c_str(), MNT_DETACH);
  }
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0 && errno != EBUSY) {
    log::Debug("remount / read-only failed", {{"error", strerror(errno)}});
  }
  return stuck;
}

namespace {

bool HasAt(std::string_view head, size_t offset, std::string_view magic) {
  return head.size() >= offset + magic.size() && head.substr(offset, magic.size()) == magic;
}

}  // namespace

std::string FilesystemFromSuperblock(std::string_view head) {
  // Offsets and magic numbers as the filesystems' own headers define them (what blkid also reads).
  if (HasAt(head, 0, "LUKS\xba\xbe")) return "crypto_LUKS";
  if (HasAt(head, 0, "XFSB")) return "xfs";
  if (HasAt(head, 0, "hsqs")) return "squashfs";
  if (HasAt(head, 0x438, "\x53\xef")) return "ext4";  // s_magic 0xEF53, little-endian
  if (HasAt(head, 0x400, "\x10\x20\xf5\xf2")) return "f2fs";
  if (HasAt(head, 0x8001, "CD001")) return "iso9660";
  if (HasAt(head, 0x10040, "_BHRfS_M")) return "btrfs";
  if (HasAt(head, 0xff6, "SWAPSPACE2") || HasAt(head, 0xff6, "SWAP-SPACE")) return "swap";
  if (HasAt(head, 0x1fe, "\x55\xaa") && (HasAt(head, 0x36, "FAT") || HasAt(head, 0x52, "FAT32")))
    return "vfat";
  return "";
}

Result<std::string> DetectFilesystem(const std::string& device) {
  UniqueFd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + device);
  std::string head(kSuperblockProbeBytes, '\0');
  size_t got = 0;
  while (got < head.size()) {
    ssize_t n = ::pread(fd.get(), head.data() + got, head.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("read " + device);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  head.resize(got);
  std::string type = FilesystemFromSuperblock(head);
  if (type.empty() || type == "swap" || type == "crypto_LUKS") {
    return Error::NotFound(device + " holds " + (type.empty() ? "no filesystem" : type) +
                           " nomad-init can mount (it knows ext2/3/4, xfs, btrfs, f2fs, vfat, iso9660 and"
                           " squashfs); format the volume on the host first");
  }
  return type;
}

}  // namespace nfc::init
