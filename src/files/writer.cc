#include "files/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "base/fs.h"

namespace nfc::files {

namespace pb = ::nfc::guest::v1;

namespace {

struct timespec TimespecOf(int64_t ns) {
  struct timespec t {};
  t.tv_sec = ns / 1000000000;
  t.tv_nsec = ns % 1000000000;
  if (t.tv_nsec < 0) {
    t.tv_sec -= 1;
    t.tv_nsec += 1000000000;
  }
  return t;
}

// Ownership is kept by number, as a bind mount would show it. Without the privilege to give files away
// (tests as a user) they stay ours.
Status ChownUnlessUnprivileged(int dir, const char* name, uint32_t uid, uint32_t gid, int flags,
                               const std::string& path) {
  if (fchownat(dir, name, uid, gid, flags) == 0 || errno == EPERM) return Ok();
  return Error::Errno("chown " + path);
}

}  // namespace

Status RemoveBeneath(int parent, const std::string& leaf) {
  struct stat st;
  if (fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? Ok() : Error::Errno("stat " + leaf);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent, leaf.c_str(), 0) != 0 && errno != ENOENT) return Error::Errno("unlink " + leaf);
    return Ok();
  }
  UniqueFd dir(openat(parent, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return errno == ENOENT ? Ok() : Error::Errno("open " + leaf);
  NFC_RETURN_IF_ERROR(
      ForEachName(dir.get(), leaf, [&](const char* name) { return RemoveBeneath(dir.get(), name); }));
  if (unlinkat(parent, leaf.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return Error::Errno("rmdir " + leaf);
  return Ok();
}

Result<TreeWriter> TreeWriter::Open(const std::string& root, WriterOptions options) {
  UniqueFd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + root);
  return TreeWriter(std::move(fd), options);
}

TreeWriter::TreeWriter(TreeWriter&&) noexcept = default;
TreeWriter& TreeWriter::operator=(TreeWriter&&) noexcept = default;
TreeWriter::~TreeWriter() {
  DiscardPending();
}

void TreeWriter::DiscardPending() {
  for (auto& [path, p] : pending_) {
    if (p.parent) unlinkat(p.parent.get(), p.temp.c_str(), 0);  // best effort: scans skip temp names anyway
  }
  pending_.clear();
}

void TreeWriter::DropPending(std::string_view path) {
  EraseSubtree(pending_, std::string(path), [](const Pending& p) {
    unlinkat(p.parent.get(), p.temp.c_str(), 0);  // gone already when its directory went
  });
}

uint64_t TreeWriter::ReceivingBytes(std::string_view except) const {
  uint64_t total = 0;
  for (const auto& [path, p] : pending_) {
    if (path != except) total += p.declared_size;
  }
  return total;
}

uint32_t TreeWriter::ModeOf(const pb::FileEntry& entry) const {
  uint32_t mode = entry.mode() & 07777;
  return options_.strip_setid ? mode & ~uint32_t{S_ISUID | S_ISGID} : mode;
}

Result<std::optional<EntryMeta>> TreeWriter::Stat(std::string_view path) const {
  std::string leaf;
  auto parent = OpenParentBeneath(root_.get(), path, leaf);
  if (!parent.ok()) {
    if (parent.error().code() == ErrorCode::kNotFound ||
        parent.error().code() == ErrorCode::kFailedPrecondition)
      return std::optional<EntryMeta>();
    return std::move(parent).error();
  }
  struct stat st;
  if (fstatat(parent->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::optional<EntryMeta>();
    return Error::Errno("stat " + std::string(path));
  }
  EntryMeta meta = MetaFromStat(st);
  if (meta.kind == EntryKind::kSymlink) {
    std::string target(4096, '\0');
    ssize_t n = readlinkat(parent->get(), leaf.c_str(), target.data(), target.size());
    if (n < 0) return Error::Errno("readlink " + std::string(path));
    target.resize(static_cast<size_t>(n));
    meta.link_target = std::move(target);
  }
  return std::optional<EntryMeta>(meta);
}

Result<UniqueFd> TreeWriter::OpenForRead(std::string_view path) const {
  std::string leaf;
  NFC_ASSIGN_OR_RETURN(UniqueFd parent, OpenParentBeneath(root_.get(), path, leaf));
  UniqueFd fd(openat(parent.get(), leaf.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error::NotFound("task files: \"" + std::string(path) + "\" is gone");
    return Error::Errno("open " + std::string(path));
  }
  return fd;
}

Result<bool> TreeWriter::Apply(const pb::FileEntry& entry) {
  const std::string& path = entry.path();
  if (entry.kind() == pb::FILE_KIND_FILE) {
    bool completed = false;
    NFC_RETURN_IF_ERROR(ApplyChunk(entry, completed));
    return completed;
  }
  // A newer state replaces a half-sent file, and a path replaced or removed takes the files being received
  // below it along.
  DropPending(path);
  std::string leaf;
  auto parent = OpenParentBeneath(root_.get(), path, leaf);
  if (!parent.ok()) {
    bool parent_gone = parent.error().code() == ErrorCode::kNotFound ||
                       parent.error().code() == ErrorCode::kFailedPrecondition;
    if (entry.kind() == pb::FILE_KIND_REMOVED && parent_gone) return true;
    return std::move(parent).error();
  }
  switch (entry.kind()) {
    case pb::FILE_KIND_REMOVED:
      NFC_RETURN_IF_ERROR(RemoveBeneath(parent->get(), leaf));
      return true;
    case pb::FILE_KIND_DIRECTORY:
      NFC_RETURN_IF_ERROR(MakeDirectory(parent->get(), leaf, entry));
      return true;
    case pb::FILE_KIND_SYMLINK:
      NFC_RETURN_IF_ERROR(MakeSymlink(parent->get(), leaf, entry));
      return true;
    default:
      return Error::InvalidArgument("task files: \"" + path + "\" has unknown kind " +
                                    std::to_string(static_cast<int>(entry.kind())));
  }
}

Status TreeWriter::MakeDirectory(int parent, const std::string& leaf, const pb::FileEntry& entry) {
  struct stat st;
  bool exists = fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && !S_ISDIR(st.st_mode)) {
    NFC_RETURN_IF_ERROR(RemoveBeneath(parent, leaf));
    exists = false;
  }
  if (!exists && mkdirat(parent, leaf.c_str(), 0700) != 0 && errno != EEXIST)
    return Error::Errno("mkdir " + entry.path());
  NFC_RETURN_IF_ERROR(ChownUnlessUnprivileged(parent, leaf.c_str(), entry.uid(), entry.gid(),
                                              AT_SYMLINK_NOFOLLOW, entry.path()));
  if (fchmodat(parent, leaf.c_str(), ModeOf(entry), 0) != 0) return Error::Errno("chmod " + entry.path());
  return Ok();
}

Status TreeWriter::MakeSymlink(int parent, const std::string& leaf, const pb::FileEntry& entry) {
  if (entry.link_target().empty() || entry.link_target().find('\0') != std::string::npos)
    return Error::InvalidArgument("task files: symlink \"" + entry.path() + "\" has an empty or NUL target");
  std::string temp = std::string(kTempPrefix) + "l" + std::to_string(++temp_counter_);
  if (symlinkat(entry.link_target().c_str(), parent, temp.c_str()) != 0)
    return Error::Errno("symlink " + entry.path());
  NFC_RETURN_IF_ERROR(ChownUnlessUnprivileged(parent, temp.c_str(), entry.uid(), entry.gid(),
                                              AT_SYMLINK_NOFOLLOW, entry.path()));
  struct timespec times[2] = {TimespecOf(entry.mtime_ns()), TimespecOf(entry.mtime_ns())};
  utimensat(parent, temp.c_str(), times, AT_SYMLINK_NOFOLLOW);  // cosmetic: links are compared by target
  struct stat st;
  if (fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
    NFC_RETURN_IF_ERROR(RemoveBeneath(parent, leaf));
  }
  if (renameat(parent, temp.c_str(), parent, leaf.c_str()) != 0) {
    Error e = Error::Errno("rename into " + entry.path());
    unlinkat(parent, temp.c_str(), 0);
    return e;
  }
  return Ok();
}

Status TreeWriter::ApplyChunk(const pb::FileEntry& entry, bool& completed) {
  const std::string& path = entry.path();
  auto it = pending_.find(path);
  if (entry.offset() == 0) {
    DropPending(path);  // a newer version starts over
    if (pending_.size() >= kMaxReceiving) {
      return Error(ErrorCode::kResourceExhausted,
                   "task files: \"" + path + "\" would be the " + std::to_string(kMaxReceiving + 1) +
                       "th file received at once; the peer must finish one first");
    }
    Pending p;
    NFC_ASSIGN_OR_RETURN(p.parent, OpenParentBeneath(root_.get(), path, p.leaf));
    p.temp = std::string(kTempPrefix) + std::to_string(++temp_counter_) + "-" + p.leaf.substr(0, 64);
    p.file.Reset(
        openat(p.parent.get(), p.temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!p.file) return Error::Errno("create a temp file for " + path);
    p.declared_size = entry.size();
    it = pending_.emplace(path, std::move(p)).first;
  } else if (it == pending_.end() || it->second.next_offset != entry.offset()) {
    if (it != pending_.end()) {  // the file is lost either way: do not keep its temp file
      unlinkat(it->second.parent.get(), it->second.temp.c_str(), 0);
      pending_.erase(it);
    }
    return Error::InvalidArgument("task files: chunk of \"" + path + "\" at offset " +
                                  std::to_string(entry.offset()) + " does not follow what was received");
  }
  Pending& p = it->second;
  if (entry.size() > p.declared_size || p.next_offset + entry.data().size() > entry.size()) {
    Error e = Error::InvalidArgument("task files: \"" + path + "\" grows past its declared size of " +
                                     std::to_string(p.declared_size) + " bytes");
    unlinkat(p.parent.get(), p.temp.c_str(), 0);
    pending_.erase(it);
    return e;
  }
  auto written = fs::WriteAll(p.file.get(), entry.data(), path);
  if (!written.ok()) {
    unlinkat(p.parent.get(), p.temp.c_str(), 0);
    pending_.erase(it);
    return written;
  }
  p.next_offset += entry.data().size();
  if (!entry.last()) return Ok();
  Status finished = Finish(path, p, entry);
  if (!finished.ok()) unlinkat(p.parent.get(), p.temp.c_str(), 0);
  pending_.erase(path);
  NFC_RETURN_IF_ERROR(finished);
  completed = true;
  return Ok();
}

Status TreeWriter::Finish(const std::string& path, Pending& p, const pb::FileEntry& entry) {
  if (p.next_offset != entry.size()) {
    return Error::InvalidArgument("task files: \"" + path + "\" ends at " + std::to_string(p.next_offset) +
                                  " bytes but its size is " + std::to_string(entry.size()));
  }
  if (fchown(p.file.get(), entry.uid(), entry.gid()) != 0 && errno != EPERM)
    return Error::Errno("chown " + path);
  if (fchmod(p.file.get(), ModeOf(entry)) != 0) return Error::Errno("chmod " + path);
  struct timespec times[2] = {TimespecOf(entry.mtime_ns()), TimespecOf(entry.mtime_ns())};
  if (futimens(p.file.get(), times) != 0) return Error::Errno("set the mtime of " + path);
  struct stat st;
  if (fstatat(p.parent.get(), p.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
    NFC_RETURN_IF_ERROR(RemoveBeneath(p.parent.get(), p.leaf));
  }
  if (renameat(p.parent.get(), p.temp.c_str(), p.parent.get(), p.leaf.c_str()) != 0)
    return Error::Errno("rename into " + path);
  return Ok();
}

}  // namespace nfc::files
