// Test helper: reads an ext4 image with libext2fs (no mount) into a map path -> one-line description, so a
// test can compare a converted image with the tree it expects, entry by entry.
#pragma once

#include <map>
#include <string>

#include "base/error.h"

namespace nfc::image::testing {

// Each value: "<type> <mode octal> <uid>:<gid> nlink=<n> [size=<n> sha=<digest>|-> target|dev=M:m]
// [x:<name>=<hex>...] mtime=<sec>.<nsec>"; hard-linked names share "ino=#k" (k counts distinct
// multiply-linked inodes in walk order).
Result<std::map<std::string, std::string>> SnapshotExt4(const std::string& image_path);
// Runs `e2fsck -fn` on the image; returns its output on failure.
Status CheckExt4(const std::string& image_path);

}  // namespace nfc::image::testing
