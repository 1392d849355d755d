#include "files/tree.h"

#include <dirent.h>
#include <fcntl.h>

#include <memory>

namespace nfc::files {

namespace {

constexpr size_t kMaxPath = 4095;
constexpr size_t kMaxComponent = 255;
constexpr int kMaxDepth = 128;

int64_t Nanos(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

std::string Join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

class Scanner {
 public:
  Scanner(const Limits& limits, const Exclusions& exclude) : limits_(limits), exclude_(exclude) {}

  Status Walk(int dir_fd, const std::string& prefix, int depth) {
    if (depth > kMaxDepth)
      return Error::InvalidArgument("task files: \"" + prefix + "\" is nested too deeply");
    return ForEachName(dir_fd, prefix, [&](const char* entry) -> Status {
      std::string_view name = entry;
      if (name.starts_with(kTempPrefix)) return Ok();
      if (prefix.empty() && exclude_.count(std::string(name))) return Ok();
      return Visit(dir_fd, Join(prefix, name), entry, depth);
    });
  }

  Snapshot Take() { return std::move(snapshot_); }

 private:
  Status Visit(int dir_fd, const std::string& path, const char* name, int depth) {
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return Ok();  // removed while we looked: the next scan sees it gone
      return Error::Errno("stat " + path);
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) return Ok();
    EntryMeta meta = MetaFromStat(st);
    if (S_ISLNK(st.st_mode)) {
      std::string target(kMaxPath + 1, '\0');
      ssize_t n = readlinkat(dir_fd, name, target.data(), target.size());
      if (n < 0) return errno == ENOENT ? Ok() : Error::Errno("readlink " + path);
      target.resize(static_cast<size_t>(n));
      meta.link_target = std::move(target);
    }
    bytes_ += meta.kind == EntryKind::kFile ? meta.size : 0;
    if (bytes_ > limits_.max_bytes) {
      return Error(ErrorCode::kResourceExhausted, "task files: more than the limit of " +
                                                      std::to_string(limits_.max_bytes) + " bytes (at \"" +
                                                      path + "\")");
    }
    if (snapshot_.size() >= limits_.max_entries) {
      return Error(ErrorCode::kResourceExhausted,
                   "task files: more than the limit of " + std::to_string(limits_.max_entries) + " entries");
    }
    snapshot_[path] = meta;
    if (!S_ISDIR(st.st_mode)) return Ok();
    UniqueFd sub(openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) return errno == ENOENT ? Ok() : Error::Errno("open " + path);
    return Walk(sub.get(), path, depth + 1);
  }

  Limits limits_;
  const Exclusions& exclude_;
  Snapshot snapshot_;
  uint64_t bytes_ = 0;
};

}  // namespace

Status ForEachName(int dir_fd, const std::string& what, const std::function<Status(const char* name)>& fn) {
  int copy = dup(dir_fd);  // closedir closes it; the caller keeps dir_fd
  if (copy < 0) return Error::Errno("dup");
  std::unique_ptr<DIR, DirCloser> dir(fdopendir(copy));
  if (!dir) {
    close(copy);
    return Error::Errno("fdopendir " + what);
  }
  while (dirent* d = readdir(dir.get())) {
    std::string_view name = d->d_name;
    if (name == "." || name == "..") continue;
    NFC_RETURN_IF_ERROR(fn(d->d_name));
  }
  return Ok();
}

EntryMeta MetaFromStat(const struct stat& st) {
  EntryMeta m;
  m.kind = S_ISDIR(st.st_mode)   ? EntryKind::kDirectory
           : S_ISLNK(st.st_mode) ? EntryKind::kSymlink
                                 : EntryKind::kFile;
  m.mode = st.st_mode & 07777;
  m.uid = st.st_uid;
  m.gid = st.st_gid;
  m.mtime_ns = Nanos(st.st_mtim);
  m.size = m.kind == EntryKind::kFile ? static_cast<uint64_t>(st.st_size) : 0;
  m.ino = st.st_ino;
  m.ctime_ns = Nanos(st.st_ctim);
  return m;
}

bool SameState(const EntryMeta& a, const EntryMeta& b, bool same_side) {
  if (a.kind != b.kind || a.uid != b.uid || a.gid != b.gid) return false;
  if (same_side && a.kind != EntryKind::kDirectory && (a.ino != b.ino || a.ctime_ns != b.ctime_ns))
    return false;
  switch (a.kind) {
    case EntryKind::kDirectory:
      return a.mode == b.mode;
    case EntryKind::kSymlink:
      return a.link_target == b.link_target;
    case EntryKind::kFile:
      return a.mode == b.mode && a.size == b.size && a.mtime_ns == b.mtime_ns;
    case EntryKind::kRemoved:
      return true;
  }
  return false;
}

uint64_t TotalBytes(const Snapshot& snapshot) {
  uint64_t total = 0;
  for (const auto& [path, meta] : snapshot) total += meta.kind == EntryKind::kFile ? meta.size : 0;
  return total;
}

Result<Snapshot> ScanTree(const std::string& root, const Limits& limits, const Exclusions& exclude) {
  UniqueFd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + root);
  Scanner scanner(limits, exclude);
  NFC_RETURN_IF_ERROR(scanner.Walk(fd.get(), "", 0));
  return scanner.Take();
}

bool IsBelow(std::string_view path, std::string_view dir) {
  return path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/';
}

std::vector<Change> Diff(const Snapshot& before, const Snapshot& after, bool same_side) {
  std::vector<Change> changes;
  // Removals emitted: entries below one go with it. Not only the last one: "a.txt" sorts between "a" and
  // "a/b", so a subtree's entries need not follow their top directly.
  std::set<std::string_view> removed;
  auto below_removed = [&](std::string_view path) {
    for (size_t slash = path.find('/'); slash != std::string_view::npos; slash = path.find('/', slash + 1)) {
      if (removed.count(path.substr(0, slash))) return true;
    }
    return false;
  };
  for (const auto& [path, meta] : before) {
    if (after.count(path) || below_removed(path)) continue;
    removed.insert(path);
    changes.push_back({path, EntryMeta{.kind = EntryKind::kRemoved}});
  }
  for (const auto& [path, meta] : after) {
    auto it = before.find(path);
    if (it == before.end() || !SameState(it->second, meta, same_side)) changes.push_back({path, meta});
  }
  return changes;
}

Status CheckRelativePath(std::string_view path) {
  auto bad = [&](std::string_view why) {
    std::string shown(path.substr(0, 200));
    for (char& c : shown)
      if (c == '\0') c = '?';
    return Error::InvalidArgument("task files: path \"" + shown + "\" " + std::string(why));
  };
  if (path.empty()) return bad("is empty");
  if (path.size() > kMaxPath) return bad("is longer than 4095 bytes");
  if (path.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
  if (path.front() == '/') return bad("is absolute");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return bad("has an empty, \".\" or \"..\" component");
    if (part.size() > kMaxComponent) return bad("has a component longer than 255 bytes");
    // The writer's temp files: never scanned, so a peer's entry by such a name would never be seen again
    // (and could collide with a file being received).
    if (part.substr(0, kTempPrefix.size()) == kTempPrefix) {
      return bad("has a component starting with \"" + std::string(kTempPrefix) +
                 "\", which is reserved for files being received");
    }
    start = end + 1;
  }
  return Ok();
}

Result<UniqueFd> OpenParentBeneath(int root_fd, std::string_view path, std::string& leaf) {
  NFC_RETURN_IF_ERROR(CheckRelativePath(path));
  UniqueFd dir(fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!dir) return Error::Errno("dup");
  size_t start = 0;
  for (size_t slash = path.find('/'); slash != std::string_view::npos; slash = path.find('/', start)) {
    std::string part(path.substr(start, slash - start));
    UniqueFd next(openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) {
      std::string where(path.substr(0, slash));
      if (errno == ENOENT) return Error::NotFound("task files: parent \"" + where + "\" does not exist");
      if (errno == ENOTDIR || errno == ELOOP)
        return Error::FailedPrecondition("task files: parent \"" + where + "\" is not a directory");
      return Error::Errno("open " + where);
    }
    dir = std::move(next);
    start = slash + 1;
  }
  leaf = std::string(path.substr(start));
  return dir;
}

}  // namespace nfc::files
