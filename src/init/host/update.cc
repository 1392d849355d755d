#include "init/host/update.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <vector>

#include "base/fs.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "init/host/boot_once.h"
#include "init/host/mounts.h"
#include "init/host/sha256.h"

namespace nfc::init::host {
namespace {

constexpr size_t kChunk = 1 << 20;

struct LoaderFile {
  const char* path;  // under the boot partition
  BootConfigKind kind;
};
constexpr LoaderFile kLoaderFiles[] = {{"/syslinux/syslinux.cfg", BootConfigKind::kSyslinux},
                                       {"/loader/loader.conf", BootConfigKind::kSystemdBoot},
                                       {"/EFI/debian/grub.cfg", BootConfigKind::kGrub}};

// Copies `size` bytes from `from` to `to` (both at offset 0), hashing what was read.
Result<std::string> CopyHashing(int from, int to, uint64_t size, const std::string& what) {
  std::vector<char> buf(kChunk);
  Sha256 h;
  uint64_t done = 0;
  while (done < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, size - done));
    ssize_t n = ::pread(from, buf.data(), want, static_cast<off_t>(done));
    if (n <= 0) return Error::Errno("read " + what + " at " + std::to_string(done));
    size_t got = static_cast<size_t>(n);
    h.Update(buf.data(), got);
    if (to >= 0) {
      for (size_t off = 0; off < got;) {
        ssize_t w = ::pwrite(to, buf.data() + off, got - off, static_cast<off_t>(done + off));
        if (w <= 0) return Error::Errno("write " + what + " at " + std::to_string(done + off));
        off += static_cast<size_t>(w);
      }
    }
    done += got;
  }
  return h.HexDigest();
}

Status CheckedFile(const std::string& path, const BundleFile& f) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error::Errno("bundle file " + path);
  if (static_cast<uint64_t>(st.st_size) != f.size)
    return Error::InvalidArgument("bundle file " + path + ": size " + std::to_string(st.st_size) +
                                  ", manifest says " + std::to_string(f.size));
  return Ok();
}

Status WriteSystem(const std::string& bundle_dir, const BundleFile& f, Slot slot) {
  auto device = FindPartitionByName(SystemPartitionName(slot));
  if (!device.ok()) return device.error();
  std::string src = bundle_dir + "/" + f.name;
  NFC_RETURN_IF_ERROR(CheckedFile(src, f));
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd out(::open(device->c_str(), O_RDWR | O_CLOEXEC));
  if (!in || !out) return Error::Errno("open " + (!in ? src : *device));
  uint64_t capacity = 0;
  if (::ioctl(out.get(), BLKGETSIZE64, &capacity) != 0) return Error::Errno("BLKGETSIZE64 " + *device);
  if (f.size > capacity)
    return Error::InvalidArgument("bundle system.ext4 is " + std::to_string(f.size) + " bytes; slot " +
                                  *device + " holds " + std::to_string(capacity) +
                                  " (build with --slot-size)");
  auto written = CopyHashing(in.get(), out.get(), f.size, *device);
  if (!written.ok()) return written.error();
  if (::fsync(out.get()) != 0) return Error::Errno("fsync " + *device);
  // Read back what the device holds now (not what we meant to write): the hash that matters.
  ::ioctl(out.get(), BLKFLSBUF, 0);
  auto readback = CopyHashing(out.get(), -1, f.size, *device);
  if (!readback.ok()) return readback.error();
  if (*readback != f.sha256)
    return Error::DataLoss("slot " + *device + ": sha256 " + *readback + " after writing, manifest says " +
                           f.sha256 +
                           (*written != f.sha256 ? " (the bundle's file was already different)" : ""));
  return Ok();
}

Status WriteBootFile(const std::string& bundle_dir, const BundleFile& f, const std::string& dest) {
  std::string src = bundle_dir + "/" + f.name;
  NFC_RETURN_IF_ERROR(CheckedFile(src, f));
  std::string tmp = dest + ".new";
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!in || !out) return Error::Errno("open " + (!in ? src : tmp));
  auto copied = CopyHashing(in.get(), out.get(), f.size, tmp);
  if (!copied.ok()) return copied.error();
  if (*copied != f.sha256)
    return Error::DataLoss("bundle file " + src + ": sha256 " + *copied + ", manifest says " + f.sha256);
  if (::fsync(out.get()) != 0) return Error::Errno("fsync " + tmp);
  out.Reset();
  if (::rename(tmp.c_str(), dest.c_str()) != 0) return Error::Errno("rename " + tmp + " to " + dest);
  return Ok();
}

constexpr const char* kLdlinux = "/syslinux/ldlinux.sys";
constexpr const char* kGrubenv = "/EFI/debian/grubenv";
constexpr const char* kEfiVars = "/sys/firmware/efi/efivars";

bool BootedByUefi() {
  return fs::Exists("/sys/firmware/efi");
}

std::string OneShotVariablePath() {
  return std::string(kEfiVars) + "/LoaderEntryOneShot-" + kLoaderVendorGuid;
}

// The ADV is the file's last two sectors; rewritten in place so it stays where the installer recorded it.
Status SetSyslinuxOnce(const std::string& boot_dir, std::optional<std::string_view> label) {
  std::string path = boot_dir + kLdlinux;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::Errno("stat " + path);
  if (st.st_size < static_cast<off_t>(kAdvSize))
    return Error::DataLoss(path + ": " + std::to_string(st.st_size) + " bytes, too small to hold an ADV");
  off_t at = st.st_size - static_cast<off_t>(kAdvSize);
  std::string adv(kAdvSize, '\0');
  if (::pread(fd.get(), adv.data(), adv.size(), at) != static_cast<ssize_t>(adv.size()))
    return Error::Errno("read the ADV of " + path);
  auto records = DecodeAdv(adv);
  // A damaged ADV reads as empty to ldlinux too: start from an empty one.
  auto updated = EncodeAdv(WithAdvBootOnce(records.ok() ? *records : std::vector<AdvRecord>{}, label));
  if (!updated.ok()) return std::move(updated).error().Context(path);
  if (records.ok() && *updated == adv) return Ok();
  if (::pwrite(fd.get(), updated->data(), updated->size(), at) != static_cast<ssize_t>(updated->size()))
    return Error::Errno("write the ADV of " + path);
  if (::fsync(fd.get()) != 0) return Error::Errno("fsync " + path);
  return Ok();
}

Status SetGrubNextEntry(const std::string& boot_dir, std::optional<std::string_view> entry) {
  // An image built before boot-once has a grub.cfg that never reads grubenv: its trial would never boot.
  auto cfg = fs::ReadFile(boot_dir + "/EFI/debian/grub.cfg", 1 << 20);
  if (entry && (!cfg.ok() || cfg->find("next_entry") == std::string::npos))
    return Error::FailedPrecondition(boot_dir + "/EFI/debian/grub.cfg does not read grubenv's next_entry " +
                                     "(an image built before boot-once trials: rebuild it)");
  std::string path = boot_dir + kGrubenv;
  auto block = fs::ReadFile(path, 4096);
  if (!block.ok() && block.error().code() == ErrorCode::kNotFound && !entry) return Ok();
  std::string current = block.ok() ? *block : EmptyGrubenv();
  auto updated = WithGrubenvVariable(current, "next_entry", entry);
  if (!updated.ok()) return std::move(updated).error().Context(path);
  if (block.ok() && *updated == *block) return Ok();
  return fs::WriteFileDurably(path, *updated, 0644);
}

Status MountEfiVars() {
  constexpr unsigned long kEfivarfsMagic = 0xde5e81e4;
  struct statfs sfs {};
  if (::statfs(kEfiVars, &sfs) == 0 && static_cast<unsigned long>(sfs.f_type) == kEfivarfsMagic) return Ok();
  if (::mount("efivarfs", kEfiVars, "efivarfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return Error::Errno(std::string("mount efivarfs on ") + kEfiVars);
  return Ok();
}

// efivarfs marks variables immutable; a write replaces the whole variable (one write call).
Status SetSystemdBootOneShot(std::optional<std::string_view> entry) {
  NFC_RETURN_IF_ERROR(MountEfiVars());
  std::string path = OneShotVariablePath();
  if (UniqueFd old(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); old) {
    int flags = 0;
    if (::ioctl(old.get(), FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
      flags &= ~FS_IMMUTABLE_FL;
      (void)::ioctl(old.get(), FS_IOC_SETFLAGS, &flags);
    }
    // Deleted, then created anew: no truncation or in-place rewrite of a variable through efivarfs.
    if (::unlink(path.c_str()) != 0) return Error::Errno("delete " + path);
  }
  if (!entry) return Ok();
  auto payload = EfiStringVariable(std::string(*entry) + ".conf");
  if (!payload.ok()) return payload.error();
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return Error::Errno("create " + path);
  if (::write(fd.get(), payload->data(), payload->size()) != static_cast<ssize_t>(payload->size()))
    return Error::Errno("write " + path);
  return Ok();
}

// Applies `entry` (nullopt: clear) to every boot-once mechanism of the loader(s) that boot this machine.
Status SetBootOnce(const std::string& boot_dir, std::optional<std::string_view> entry) {
  int applied = 0;
  if (!BootedByUefi()) {
    if (fs::Exists(boot_dir + kLdlinux)) {
      NFC_RETURN_IF_ERROR(SetSyslinuxOnce(boot_dir, entry));
      applied++;
    }
  } else {
    if (fs::Exists(boot_dir + "/loader/loader.conf")) {
      NFC_RETURN_IF_ERROR(SetSystemdBootOneShot(entry));
      applied++;
    }
    if (fs::Exists(boot_dir + "/EFI/debian/grub.cfg")) {
      NFC_RETURN_IF_ERROR(SetGrubNextEntry(boot_dir, entry));
      applied++;
    }
  }
  if (applied == 0)
    return Error::NotFound(std::string("no boot-once mechanism for this machine's loader under ") + boot_dir +
                           (BootedByUefi() ? " (UEFI: loader/loader.conf or EFI/debian/grub.cfg)"
                                           : " (BIOS: syslinux/ldlinux.sys)"));
  ::sync();
  return Ok();
}

}  // namespace

Status RequestBootOnce(const std::string& boot_dir, const std::string& entry) {
  return SetBootOnce(boot_dir, entry);
}

Status ClearBootOnce(const std::string& boot_dir) {
  return SetBootOnce(boot_dir, std::nullopt);
}

Status MountBootPartition(const std::string& mount_point) {
  auto device = FindPartitionByName("nomados-boot");
  if (!device.ok()) return device.error();
  NFC_RETURN_IF_ERROR(fs::MakeDirs(mount_point, 0755));
  if (::mount(device->c_str(), mount_point.c_str(), "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "umask=0077,flush") != 0)
    return Error::Errno("mount boot partition " + *device + " (vfat) on " + mount_point);
  return Ok();
}

Status SetBootDefault(const std::string& boot_dir, const std::string& entry) {
  int written = 0;
  for (const auto& lf : kLoaderFiles) {
    std::string path = boot_dir + lf.path;
    auto text = fs::ReadFile(path, 1 << 20);
    if (!text.ok() && text.error().code() == ErrorCode::kNotFound) continue;
    if (!text.ok()) return text.error();
    auto updated = WithDefaultBootEntry(*text, lf.kind, entry);
    if (!updated.ok()) return std::move(updated).error().Context(path);
    written++;
    if (*updated == *text) continue;  // already so: no write, no window
    NFC_RETURN_IF_ERROR(fs::WriteFileDurably(path, *updated, 0644));
  }
  if (written == 0) return Error::NotFound("no boot loader configuration under " + boot_dir);
  ::sync();
  return Ok();
}

Result<std::string> WriteBundleToSlot(const std::string& bundle_dir, Slot slot, const std::string& boot_dir) {
  auto text = fs::ReadFile(bundle_dir + "/manifest", 64 << 10);
  if (!text.ok()) return text.error();
  auto manifest = ParseBundleManifest(*text);
  if (!manifest.ok()) return manifest.error();
  log::Info("update: writing the bundle into the inactive slot",
            {{"version", manifest->version}, {"slot", std::string(SlotName(slot))}});
  NFC_RETURN_IF_ERROR(WriteSystem(bundle_dir, *manifest->Find("system.ext4"), slot));
  std::string dir = boot_dir + "/" + std::string(SlotName(slot));
  NFC_RETURN_IF_ERROR(fs::MakeDirs(dir, 0755));
  for (const char* name : {"vmlinuz", "initrd.img"}) {
    NFC_RETURN_IF_ERROR(WriteBootFile(bundle_dir, *manifest->Find(name), dir + "/" + name));
  }
  ::sync();
  return manifest->version;
}

}  // namespace nfc::init::host
