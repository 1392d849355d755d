#include "init/host/update.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "base/fs.h"
#include "base/log.h"
#include "base/unique_fd.h"
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

}  // namespace

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
    NFC_RETURN_IF_ERROR(fs::WriteFileDurably(path, *updated, 0644));
    written++;
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
