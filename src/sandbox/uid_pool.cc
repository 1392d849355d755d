#include "sandbox/uid_pool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <vector>

#include "base/fs.h"
#include "base/unique_fd.h"

namespace nfc::sandbox {

using fs::Exists;
using fs::MakeDirs;
using fs::ReadFile;
using fs::WriteFileDurably;
namespace {

Result<uint32_t> ParseId(std::string_view text, std::string_view range) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v > 0xffffffffULL) {
    return Error::InvalidArgument("uid range \"" + std::string(range) + "\": \"" + std::string(text) +
                                  "\" is not a number from 1 to 4294967294");
  }
  return static_cast<uint32_t>(v);
}

// Held while the pool changes: one process at a time reads and writes leases.
Result<UniqueFd> LockPool(const std::string& dir) {
  NFC_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  UniqueFd fd(::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::Errno("open " + dir + "/.lock");
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Error::Errno("flock " + dir + "/.lock");
  }
  return fd;
}

}  // namespace

Result<UidRange> UidRange::Parse(std::string_view text) {
  auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    return Error::InvalidArgument("uid range \"" + std::string(text) +
                                  "\": expected FIRST-LAST, e.g. 200000-265535");
  }
  UidRange r;
  NFC_ASSIGN_OR_RETURN(r.first, ParseId(text.substr(0, dash), text));
  NFC_ASSIGN_OR_RETURN(r.last, ParseId(text.substr(dash + 1), text));
  if (r.first == 0 || r.last == 0xffffffffU || r.first > r.last) {
    return Error::InvalidArgument(
        "uid range \"" + std::string(text) +
        "\": needs 1 <= FIRST <= LAST <= 4294967294 (0 is root, 4294967295 means no id)");
  }
  return r;
}

std::string UidRange::ToString() const {
  return std::to_string(first) + "-" + std::to_string(last);
}

Result<uint32_t> UidPool::Acquire(const std::string& owner) {
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockPool(dir_));
  for (uint64_t uid = range_.first; uid <= range_.last; uid++) {
    std::string lease = dir_ + "/" + std::to_string(uid);
    if (Exists(lease)) {
      auto holder = ReadFile(lease, 4096);
      // Empty: a crash between creating and writing it (both happen under the lock).
      if (holder.ok() && !holder->empty() && Exists(*holder)) continue;
      if (::unlink(lease.c_str()) != 0 && errno != ENOENT) return Error::Errno("reclaim uid lease " + lease);
    }
    NFC_RETURN_IF_ERROR_CTX(WriteFileDurably(lease, owner, 0600), "uid lease");
    return static_cast<uint32_t>(uid);
  }
  return Error(ErrorCode::kResourceExhausted, "every uid of the range " + range_.ToString() +
                                                  " is leased to a running VM (" + dir_ + "); widen vm_uids");
}

Status UidPool::Release(uint32_t uid, const std::string& owner) {
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockPool(dir_));
  std::string lease = dir_ + "/" + std::to_string(uid);
  auto holder = ReadFile(lease, 4096);
  if (!holder.ok() || *holder != owner) return Ok();
  if (::unlink(lease.c_str()) != 0 && errno != ENOENT) return Error::Errno("release uid lease " + lease);
  return Ok();
}

Result<int> UidPool::ReclaimOrphans() {
  if (!Exists(dir_)) return 0;
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockPool(dir_));
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return Error::Errno("opendir " + dir_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  ::closedir(d);
  int reclaimed = 0;
  for (const auto& name : names) {
    std::string lease = dir_ + "/" + name;
    auto holder = ReadFile(lease, 4096);
    if (holder.ok() && !holder->empty() && Exists(*holder)) continue;
    if (::unlink(lease.c_str()) != 0 && errno != ENOENT) return Error::Errno("reclaim uid lease " + lease);
    reclaimed++;
  }
  return reclaimed;
}

}  // namespace nfc::sandbox
