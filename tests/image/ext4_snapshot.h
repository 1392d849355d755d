// Test helper: reads an ext4 image with libext2fs (no mount), or a directory tree on the host, into a map
// path -> what the entry is, so a test can compare a converted image with the tree it expects (or with the
// tree another tool unpacked), entry by entry.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "base/error.h"

namespace nfc::image::testing {

struct TreeEntry {
  std::string type;   // dir, file, symlink, chr, blk, fifo, other
  uint32_t mode = 0;  // permission bits
  uint32_t uid = 0, gid = 0;
  uint32_t nlink = 0;
  uint64_t ino = 0;  // identifies hard-linked names within one tree
  uint64_t size = 0;
  std::string sha256;  // regular files: hex digest of the content
  std::string target;  // symlinks
  uint32_t dev_major = 0, dev_minor = 0;
  std::map<std::string, std::string> xattrs;
  int64_t mtime = 0;
  uint32_t mtime_nsec = 0;
};

// Every entry below the root (the root itself is not listed), by path ("/etc/passwd").
Result<std::map<std::string, TreeEntry>> ReadExt4Tree(const std::string& image_path);
Result<std::map<std::string, TreeEntry>> ReadHostTree(const std::string& root);

// Each value: "<type> <mode octal> <uid>:<gid> nlink=<n> [size=<n> sha=<digest>|-> target|dev=M:m]
// [x:<name>=<hex>...] mtime=<sec>.<nsec>"; hard-linked names share "ino=#k" (k counts distinct
// multiply-linked inodes in walk order).
Result<std::map<std::string, std::string>> SnapshotExt4(const std::string& image_path);
// Runs `e2fsck -fn` on the image; returns its output on failure.
Status CheckExt4(const std::string& image_path);

}  // namespace nfc::image::testing
