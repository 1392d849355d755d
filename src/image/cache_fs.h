// Small filesystem helpers for the image cache: atomic writes, advisory locks, recursive removal, disk usage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/unique_fd.h"

namespace nfc::image {

// Thin names over base/fs.h, kept for the image code that calls them. fs::WriteFileDurably's temp files start
// with ".tmp-", which the store's directory scans skip.
inline Status WriteFileAtomic(const std::string& path, const std::string& data) {
  return fs::WriteFileDurably(path, data, 0644);
}
// Unlike fs::ReadFile, follows a final symlink: OCI layouts given by users may be trees of links.
Result<std::string> ReadWholeFile(const std::string& path, size_t max_bytes = 64 << 20);
inline Status MakeDirs(const std::string& path) {
  return fs::MakeDirs(path, 0755);
}
// flock(2) on path (created if missing). Exclusive or shared; non-blocking returns an invalid fd when busy.
// Locks are per open file description, so two threads of one process exclude each other too.
Result<UniqueFd> LockPath(const std::string& path, bool exclusive, bool blocking);
inline Status RemoveTree(const std::string& path) {
  return fs::RemoveTree(path);
}
// Allocated bytes (st_blocks) of a file or tree.
uint64_t DiskUsage(const std::string& path);
Result<std::vector<std::string>> ListDir(
    const std::string& path);  // names, without . and ..; missing dir: empty
inline bool PathExists(const std::string& path) {
  return fs::Exists(path);
}
// File names for references and lease holders: [A-Za-z0-9._-] kept, every other byte as %XX.
std::string EscapeName(const std::string& s);
// Undoes EscapeName; nullopt for a name EscapeName cannot have produced.
std::optional<std::string> UnescapeName(const std::string& s);
// A full cache filesystem is named as such, with the space left on it: the operator's remedy is to free space
// or lower image_cache_size, and the pull can be retried (the code stays kResourceExhausted). Other errors
// pass unchanged.
Error NameFullCache(Error e, const std::string& root);
using fs::TempName;  // moved to base/fs.h; the cache's callers keep their name

}  // namespace nfc::image
