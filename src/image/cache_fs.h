// Small filesystem helpers for the image cache: atomic writes, advisory locks, recursive removal, disk usage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::image {

// Writes data to path via a temporary file in the same directory, fsync, rename, fsync of the directory.
Status WriteFileAtomic(const std::string& path, const std::string& data);
Result<std::string> ReadWholeFile(const std::string& path, size_t max_bytes = 64 << 20);
Status MakeDirs(const std::string& path);
// flock(2) on path (created if missing). Exclusive or shared; non-blocking returns an invalid fd when busy.
// Locks are per open file description, so two threads of one process exclude each other too.
Result<UniqueFd> LockPath(const std::string& path, bool exclusive, bool blocking);
Status RemoveTree(const std::string& path);
// Allocated bytes (st_blocks) of a file or tree.
uint64_t DiskUsage(const std::string& path);
Result<std::vector<std::string>> ListDir(
    const std::string& path);  // names, without . and ..; missing dir: empty
bool PathExists(const std::string& path);
// A unique name for temporary entries: "<pid>-<random>".
std::string TempName();

}  // namespace nfc::image
