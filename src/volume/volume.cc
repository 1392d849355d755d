#include "volume/volume.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fs.h"
#include "base/process.h"
#include "base/unique_fd.h"
#include "image/mke2fs.h"

namespace nfc::volume {
namespace {

// Paths a mount must not cover: the guest's own pseudo-filesystems.
constexpr const char* kSystemPaths[] = {"/proc", "/sys", "/dev"};

bool IsCleanAbsolute(const std::string& p) {
  if (p.size() < 2 || p[0] != '/' || p.back() == '/') return false;
  size_t i = 1;
  while (i <= p.size()) {
    size_t next = p.find('/', i);
    if (next == std::string::npos) next = p.size();
    std::string part = p.substr(i, next - i);
    if (part.empty() || part == "." || part == "..") return false;
    i = next + 1;
  }
  return true;
}

bool AtOrBelow(const std::string& path, const std::string& dir) {
  return path == dir ||
         (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

std::string Quoted(const std::string& s) {
  return "\"" + s + "\"";
}

Status CheckOne(const Request& r, const std::vector<std::string>& reserved) {
  if (r.host_path.empty() || r.host_path[0] != '/') {
    return Error::InvalidArgument(r.field + ".host_path: " + Quoted(r.host_path) +
                                  " is not an absolute path on the host");
  }
  if (!IsCleanAbsolute(r.task_path)) {
    return Error::InvalidArgument(r.field + ".task_path: " + Quoted(r.task_path) +
                                  " must be an absolute path below / without \".\", \"..\" or empty parts");
  }
  for (const auto& dir : reserved) {
    if (AtOrBelow(r.task_path, dir) || AtOrBelow(dir, r.task_path)) {
      return Error::InvalidArgument(r.field + ".task_path: " + Quoted(r.task_path) + " overlaps " + dir +
                                    ", one of Nomad's task directories the driver mirrors into the VM;"
                                    " mount the volume elsewhere");
    }
  }
  if (r.kind == Request::Kind::kMount) {
    for (const char* dir : kSystemPaths) {
      if (AtOrBelow(r.task_path, dir) || AtOrBelow(dir, r.task_path)) {
        return Error::InvalidArgument(r.field + ".task_path: " + Quoted(r.task_path) +
                                      " overlaps the guest's " + dir);
      }
    }
  }
  return Ok();
}

Status FsyncPath(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + path);
  if (::fsync(fd.get()) != 0) return Error::Errno("fsync " + path);
  return Ok();
}

// An empty ext4 at `path`, sparse, its root owned like the volume's directory so the user the operator made
// the directory for can write to it in the guest too.
Status FormatImage(const std::string& path, uint64_t bytes, const struct stat& dir) {
  {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return Error::Errno("create " + path);
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) return Error::Errno("size " + path);
  }
  std::string owner = std::to_string(dir.st_uid) + ":" + std::to_string(dir.st_gid);
  SpawnOptions so;
  // A journal: the guest may crash or be killed with the volume mounted. Lazy init keeps the file small.
  so.argv = image::Mke2fsArgv(path, "nomad-volume",
                              {"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=" + owner});
  NFC_RETURN_IF_ERROR_CTX(RunToCompletion(std::move(so)), "format " + path);
  return FsyncPath(path, O_RDONLY);
}

// The directory's image, made on first use. Made under a temporary name and linked into place, so a
// concurrent first start of another task never sees a half-formatted image, and never replaces one.
Result<Disk> DirectoryImage(const Request& r, const struct stat& dir, uint64_t image_bytes) {
  Disk disk{r.host_path + "/" + kImageName, true, false};
  struct stat st {};
  if (::lstat(disk.path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      return Error::FailedPrecondition(
          r.field + ": " + disk.path +
          " exists and is not a regular file (it is where the volume's disk image"
          " lives)");
    }
    return disk;
  }
  if (errno != ENOENT) return Error::Errno("stat " + disk.path).Context(r.field);
  if (image_bytes < kMinImageBytes) {
    return Error::InvalidArgument(r.field + ": volume_size " + std::to_string(image_bytes) +
                                  " bytes is below 16 MiB");
  }
  std::string tmp = r.host_path + "/." + kImageName + "." + fs::TempName() + ".tmp";
  Status made = FormatImage(tmp, (image_bytes + 4095) / 4096 * 4096, dir);
  if (made.ok() && ::link(tmp.c_str(), disk.path.c_str()) == 0) {
    disk.created = true;
  } else if (made.ok() && errno != EEXIST) {
    made = Error::Errno("link " + tmp + " to " + disk.path);
  }
  ::unlink(tmp.c_str());
  if (!made.ok()) return std::move(made).error().Context(r.field + ": create the volume's disk image");
  NFC_RETURN_IF_ERROR_CTX(FsyncPath(r.host_path, O_RDONLY | O_DIRECTORY), r.field);
  return disk;
}

Result<Disk> FindDisk(const Request& r, uint64_t image_bytes) {
  struct stat st {};
  if (::stat(r.host_path.c_str(), &st) != 0) {
    return Error::Errno(r.field + ".host_path " + r.host_path);
  }
  if (S_ISBLK(st.st_mode)) return Disk{r.host_path, false, false};
  if (r.kind == Request::Kind::kDevice) {
    return Error::InvalidArgument(
        r.field + ".host_path: " + r.host_path +
        (S_ISCHR(st.st_mode) ? " is a character device; a microVM can be given block devices only (it has no"
                               " way to pass a host character device through)"
                             : " is not a device"));
  }
  if (S_ISDIR(st.st_mode)) return DirectoryImage(r, st, image_bytes);
  return Error::InvalidArgument(r.field + ".host_path: " + r.host_path +
                                " is neither a directory nor a block device; a microVM cannot share a single"
                                " file with the host");
}

}  // namespace

Status CheckRequests(const std::vector<Request>& requests, const std::vector<std::string>& reserved_paths) {
  for (size_t i = 0; i < requests.size(); i++) {
    NFC_RETURN_IF_ERROR(CheckOne(requests[i], reserved_paths));
    for (size_t j = 0; j < i; j++) {
      if (requests[j].task_path == requests[i].task_path) {
        return Error::InvalidArgument(requests[i].field + ".task_path: " + Quoted(requests[i].task_path) +
                                      " is also the task path of " + requests[j].field);
      }
    }
  }
  return Ok();
}

Result<Disk> Prepare(const Request& request, uint64_t image_bytes) {
  NFC_ASSIGN_OR_RETURN(Disk disk, FindDisk(request, image_bytes));
  auto mode = request.read_only ? fs::LockMode::kShared : fs::LockMode::kExclusive;
  auto lock = fs::TryLockFile(disk.path, mode);
  if (!lock.ok()) return std::move(lock).error().Context(request.field + " (" + request.task_path + ")");
  return disk;
}

Result<uint64_t> DiskBytes(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::Errno("stat " + path);
  if (!S_ISBLK(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  uint64_t bytes = 0;
  if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) != 0) return Error::Errno("BLKGETSIZE64 " + path);
  return bytes;
}

std::string GuestDiskName(size_t index) {
  std::string letters;
  for (size_t n = index + 1; n > 0; n = (n - 1) / 26)
    letters.insert(letters.begin(), char('a' + (n - 1) % 26));
  return "vd" + letters;
}

}  // namespace nfc::volume
