// The pieces a Mirror (mirror.h) is built from: what one path of a tree looks like (EntryMeta), a whole tree
// at one moment (Snapshot), the difference between two of them, and opening a path strictly beneath a root.
//
// Everything here refuses to leave the root: paths are relative, "/"-separated, without "", "." or ".."
// components, and no symlink is followed on the way (a link inside the tree is mirrored as a link, never
// read through). Regular files, directories and symlinks are mirrored; FIFOs, sockets and devices are
// skipped, as are the temp files our own writer creates (kTempPrefix).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::files {

enum class EntryKind { kFile, kDirectory, kSymlink, kRemoved };

// Temp files the writer creates next to their final name; never mirrored.
inline constexpr std::string_view kTempPrefix = ".nfc-sync-";

struct EntryMeta {
  EntryKind kind = EntryKind::kFile;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;
  uint64_t size = 0;  // regular files
  std::string link_target;
  // This side's identity of the inode, compared only between two scans of the same side: a file replaced by
  // rename (how Nomad renders templates) gets a new inode even when size and mtime happen to match.
  uint64_t ino = 0;
  int64_t ctime_ns = 0;
};

// Whether a and b describe the same state of one path (directories: kind, mode and owner; their mtime
// changes with every child). With same_side, the inode identity counts too.
bool SameState(const EntryMeta& a, const EntryMeta& b, bool same_side);

EntryMeta MetaFromStat(const struct stat& st);

// Relative path -> state. Ordered, so a directory comes before everything below it.
using Snapshot = std::map<std::string, EntryMeta>;

struct Limits {
  uint64_t max_bytes = uint64_t{1} << 30;  // sum of the regular files' sizes
  uint64_t max_entries = 100000;
};

uint64_t TotalBytes(const Snapshot& snapshot);

// Names directly below the root that are not mirrored (for /alloc: "logs", Nomad's own log files).
using Exclusions = std::set<std::string>;

// Walks the tree under root (which must be a directory). Exceeding a limit is kResourceExhausted naming it.
Result<Snapshot> ScanTree(const std::string& root, const Limits& limits, const Exclusions& exclude = {});

struct Change {
  std::string path;
  EntryMeta meta;  // kind kRemoved for a removal
};

// What turns `before` into `after`: removals first (only the topmost of a removed subtree), then new and
// changed entries, parents before children.
std::vector<Change> Diff(const Snapshot& before, const Snapshot& after, bool same_side);

// "a/b/c" is a path we accept from a peer: non-empty, relative, no "", "." or ".." component, no NUL, at
// most 4095 bytes, components at most 255, none starting with kTempPrefix. Otherwise kInvalidArgument naming
// the path.
Status CheckRelativePath(std::string_view path);
// True for "a/b" below "a" (not for "ab").
bool IsBelow(std::string_view path, std::string_view dir);

// Erases path and everything below it from a map keyed by relative paths, handing each erased value to fn.
// What is below "a" sorts from "a/" on, contiguously; siblings such as "a.txt" or "a-1" sort between "a"
// and "a/", so a walk from "a" that stops at the first path not below it would miss the subtree.
template <typename Map, typename Fn>
void EraseSubtree(Map& map, const std::string& path, Fn fn) {
  if (auto it = map.find(path); it != map.end()) {
    fn(it->second);
    map.erase(it);
  }
  const std::string prefix = path + "/";
  for (auto it = map.lower_bound(prefix);
       it != map.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    fn(it->second);
    it = map.erase(it);
  }
}

// Calls fn with every name in the directory dir_fd (not "." or ".."), stopping at its first error. `what`
// names the directory in an error.
Status ForEachName(int dir_fd, const std::string& what, const std::function<Status(const char* name)>& fn);

// Opens the directory holding `path` (relative, checked) beneath root_fd without following any symlink;
// `leaf` receives the last component. kNotFound when a parent is missing, kFailedPrecondition when a
// parent is not a directory (a symlink included).
Result<UniqueFd> OpenParentBeneath(int root_fd, std::string_view path, std::string& leaf);

}  // namespace nfc::files
