#include "base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <random>
#include <vector>

#include "base/unique_fd.h"

namespace nfc::fs {
namespace {

// Unique per process and call, so concurrent writers of one path in one process never share a temp file.
// Hidden and prefixed ".tmp-", so directory scanners (the image cache's) skip it while it is being written.
std::string TempPathFor(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return dir + ".tmp-" + base + "." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
}

Status FsyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Error::Errno("open directory " + dir);
  if (::fsync(fd.get()) != 0) return Error::Errno("fsync directory " + dir);
  return Ok();
}

Result<std::vector<std::string>> EntryNames(int dirfd, const std::string& path) {
  int fd = ::dup(dirfd);
  if (fd < 0) return Error::Errno("dup " + path);
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    Error e = Error::Errno("opendir " + path);
    ::close(fd);
    return e;
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return Error::Sys(err, "readdir " + path);
  return names;
}

// Empties the directory open as dirfd (named path in errors), without following symlinks.
Status RemoveContents(int dirfd, const std::string& path) {
  NFC_ASSIGN_OR_RETURN(auto names, EntryNames(dirfd, path));
  for (const auto& name : names) {
    std::string child = path + "/" + name;
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return Error::Errno("stat " + child);
    }
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return Error::Errno("open " + child);
      NFC_RETURN_IF_ERROR(RemoveContents(sub.get(), child));
    }
    if (::unlinkat(dirfd, name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT)
      return Error::Errno("remove " + child);
  }
  return Ok();
}

}  // namespace

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Result<std::string> ReadFile(const std::string& path, size_t max_bytes, FinalSymlink links) {
  int flags = O_RDONLY | O_CLOEXEC | (links == FinalSymlink::kRefuse ? O_NOFOLLOW : 0);
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd) return Error::Errno("open " + path);
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("read " + path);
    }
    if (n == 0) return out;
    if (static_cast<size_t>(n) > max_bytes - out.size()) {
      return Error(ErrorCode::kResourceExhausted,
                   path + " is larger than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

Status WriteAll(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("write " + std::string(what));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

Status WriteFileDurably(const std::string& path, std::string_view contents, mode_t mode) {
  std::string tmp = TempPathFor(path);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return Error::Errno("write " + path + ": create " + tmp);
  Status written = WriteAll(fd.get(), contents, tmp);
  if (written.ok() && ::fsync(fd.get()) != 0) written = Error::Errno("fsync " + tmp);
  if (written.ok() && ::close(fd.Release()) != 0) written = Error::Errno("close " + tmp);
  if (written.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    written = Error::Errno("rename " + tmp + " to " + path);
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }
  return FsyncDirectory(DirName(path));
}

Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0) return Ok();
  if (errno != EEXIST) return Error::Errno("mkdir " + path);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error::Errno("stat " + path);
  if (!S_ISDIR(st.st_mode)) return Error::FailedPrecondition(path + " exists and is not a directory");
  return Ok();
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return Error::InvalidArgument("mkdirs: empty path");
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    if (path[slash - 1] == '/') continue;  // "a//b"
    NFC_RETURN_IF_ERROR(MakeDir(path.substr(0, slash), mode));
  }
  if (path.back() == '/' && path.size() > 1) return Ok();  // the loop made it
  return MakeDir(path, mode);
}

Status RemoveTree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok();
    return Error::Errno("stat " + path);
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return Error::Errno("open " + path);
    NFC_RETURN_IF_ERROR(RemoveContents(dir.get(), path));
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return Error::Errno("rmdir " + path);
    return Ok();
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Error::Errno("unlink " + path);
  return Ok();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string TempName() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%d-%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

Result<UniqueFd> TryLockFile(const std::string& path, LockMode mode) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Error::Errno("stat " + path);
  bool exclusive = mode == LockMode::kExclusive;
  int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
  if (exclusive && S_ISBLK(st.st_mode)) flags |= O_EXCL;
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd) {
    if (errno == EBUSY) {
      return Error(ErrorCode::kUnavailable,
                   path + " is in use (mounted on the host, or opened exclusively by another program)");
    }
    return Error::Errno("open " + path);
  }
  if (::flock(fd.get(), (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(ErrorCode::kUnavailable,
                   path + " is in use by another VM" +
                       (exclusive ? " (a read-write user needs it alone)" : " that writes to it"));
    }
    return Error::Errno("flock " + path);
  }
  return fd;
}

}  // namespace nfc::fs
