// CreateScratchDisk: a per-task writable disk, formatted ext4, sparse, made in milliseconds by cloning a
// template formatted once per size.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/process.h"
#include "image/cache_fs.h"
#include "image/mke2fs.h"
#include "image/store.h"

namespace nfc::image {
namespace {

Status Format(const std::string& path, uint64_t size_bytes) {
  {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return Error::Errno("create " + path);
    if (::ftruncate(fd.get(), static_cast<off_t>(size_bytes)) != 0) return Error::Errno("size " + path);
  }
  // A journal keeps the upper layer consistent across a guest crash; lazy init keeps formatting (and the
  // file) small: the guest kernel initialises inode tables in the background only where it writes.
  SpawnOptions so;
  so.argv = Mke2fsArgv(path, "scratch", {"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"});
  NFC_RETURN_IF_ERROR_CTX(RunToCompletion(std::move(so)), "format " + path);
  return Ok();
}

// Copies only the allocated ranges (SEEK_DATA/SEEK_HOLE), so the copy stays as sparse as the template.
Status SparseCopy(int in, int out, uint64_t size) {
  if (::ftruncate(out, static_cast<off_t>(size)) != 0) return Error::Errno("size scratch disk");
  off_t pos = 0;
  while (true) {
    off_t data = ::lseek(in, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;
      return Error::Errno("seek template");
    }
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) return Error::Errno("seek template");
    off_t in_off = data, out_off = data;
    while (in_off < hole) {
      ssize_t n = ::copy_file_range(in, &in_off, out, &out_off, static_cast<size_t>(hole - in_off), 0);
      if (n < 0) return Error::Errno("copy scratch template");
      if (n == 0) break;
    }
    pos = hole;
  }
  return Ok();
}

}  // namespace

Status CreateScratchDisk(const std::string& path, uint64_t size_bytes, const std::string& template_dir) {
  if (size_bytes < (16ull << 20)) {
    return Error::InvalidArgument("scratch disk size " + std::to_string(size_bytes) + " is below 16 MiB");
  }
  size_bytes = (size_bytes + 4095) / 4096 * 4096;
  if (template_dir.empty()) return Format(path, size_bytes);
  NFC_RETURN_IF_ERROR(MakeDirs(template_dir));
  std::string tmpl = template_dir + "/scratch-" + std::to_string(size_bytes) + ".ext4";
  if (!PathExists(tmpl)) {
    NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockPath(tmpl + ".lock", true, true));
    if (!PathExists(tmpl)) {
      std::string tmp = tmpl + "." + TempName();
      Status s = Format(tmp, size_bytes);
      if (s.ok() && ::rename(tmp.c_str(), tmpl.c_str()) != 0) s = Error::Errno("rename " + tmp);
      if (!s.ok()) {
        ::unlink(tmp.c_str());
        return s;
      }
    }
  }
  UniqueFd in(::open(tmpl.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return Error::Errno("open " + tmpl);
  std::string tmp = path + "." + TempName();
  UniqueFd out(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out) return Error::Errno("create " + tmp);
  Status s = Ok();
  if (::ioctl(out.get(), FICLONE, in.get()) != 0)
    s = SparseCopy(in.get(), out.get(), size_bytes);  // no reflink
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Error::Errno("rename " + tmp);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

}  // namespace nfc::image
