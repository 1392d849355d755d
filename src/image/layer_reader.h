// LayerReader: iterates the entries of one layer blob (tar, tar+gzip or tar+zstd) with libarchive.
//
// Only tar formats and the gzip/zstd filters are enabled: a layer is never interpreted as another archive
// type. Paths are returned as stored; LayerTree decides what is legal.
#pragma once

#include <archive.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace nfc::image {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kChar, kBlock, kFifo, kOther };
  Type type = Type::kFile;
  std::string path;
  std::string link_target;  // symlink target, or hard link target path
  uint32_t mode = 0;        // permission bits incl. setuid/setgid/sticky
  uint32_t uid = 0, gid = 0;
  int64_t mtime = 0;
  uint32_t mtime_nsec = 0;
  uint64_t size = 0;
  uint32_t dev_major = 0, dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class LayerReader {
 public:
  // Opens a layer file. name is used in error messages (e.g. the layer digest).
  static Result<std::unique_ptr<LayerReader>> Open(const std::string& path, std::string name);
  ~LayerReader();

  // Reads the next header; false at the end of the archive.
  Result<bool> Next(TarEntry* entry);
  // Streams the current entry's data: fn(offset, data, len); sparse holes show up as offset gaps.
  Status ReadData(const std::function<Status(uint64_t offset, const void* data, size_t len)>& fn);
  // Compressed bytes consumed so far (for progress).
  uint64_t BytesConsumed() const;

 private:
  LayerReader(struct archive* a, std::string name) : a_(a), name_(std::move(name)) {}
  Error ArchiveError(const std::string& what) const;
  struct archive* a_;
  std::string name_;
};

}  // namespace nfc::image
