// Files and directories: the project's one implementation of whole-file reads with a size limit, durable
// replacement of a file, mkdir -p and rm -rf. Every error names the path (and the limit, when one is
// exceeded).
//
// Paths are not resolved through a final symlink where that could redirect a write or a removal: reads and
// the temp file of a durable write use O_NOFOLLOW, and RemoveTree never descends into a symlinked directory.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::fs {

// Whether a read may follow a symlink in the final path component. Files the plugin or shim wrote themselves
// are read with kRefuse; system files (/etc/passwd in an image, /proc/self/...) may legitimately be links.
enum class FinalSymlink { kRefuse, kFollow };

// The whole file, if it is at most max_bytes long (kResourceExhausted naming the limit otherwise). A missing
// file is kNotFound; a final symlink is refused (ELOOP) unless `links` says kFollow.
Result<std::string> ReadFile(const std::string& path, size_t max_bytes,
                             FinalSymlink links = FinalSymlink::kRefuse);

// Replaces path with contents so that after a crash it holds either the old or the new contents, never a torn
// or empty file: a temp file in the same directory, fsync, rename over path, fsync of the directory. `mode`
// applies to the new file. Durable when it returns OK.
Status WriteFileDurably(const std::string& path, std::string_view contents, mode_t mode = 0644);

// Writes all of data to fd, retrying short writes and EINTR; `what` names the target in an error.
Status WriteAll(int fd, std::string_view data, std::string_view what);

// mkdir(2); an existing directory (or a symlink to one) is OK, an existing non-directory is
// kFailedPrecondition.
Status MakeDir(const std::string& path, mode_t mode);
// MakeDir for path and every missing parent; `mode` applies to each directory created.
Status MakeDirs(const std::string& path, mode_t mode);

// Removes path and, if it is a directory, everything below it. Symlinks are removed, never followed. A
// missing path is OK.
Status RemoveTree(const std::string& path);

// Whether something (of any type, a dangling symlink included) exists at path.
bool Exists(const std::string& path);

// A whole-file advisory lock (flock) on a file or block device several VMs may open: kShared for readers,
// kExclusive for the one writer. Never waits: a lock held elsewhere is kUnavailable (the other user may go
// away, so a retry can succeed). An exclusive lock on a block device also opens it O_EXCL, which the kernel
// refuses while the device is mounted or claimed by another program. The lock lasts as long as the returned
// descriptor or any copy of it: a child that inherits it keeps it after we exit.
enum class LockMode { kShared, kExclusive };
Result<UniqueFd> TryLockFile(const std::string& path, LockMode mode);

// A unique name for temporary entries: "<pid>-<random>".
std::string TempName();

// The directory part of path: "a/b" -> "a", "/a" -> "/", "a" -> ".".
std::string DirName(const std::string& path);

}  // namespace nfc::fs
