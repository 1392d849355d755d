// LayerReader: the entries of one layer blob (tar, tar+gzip or tar+zstd, detected from the content), read
// the way Go's archive/tar reads them (TarReader) and described as TarEntry: what the tar says, before any
// of the applier's rules. Paths and numbers are returned as stored; LayerTree decides what they mean.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "image/layer_stream.h"
#include "image/tar_reader.h"

namespace nfc::image {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kChar, kBlock, kFifo, kGlobalHeader, kOther };
  Type type = Type::kFile;
  char typeflag = '0';  // as stored: names the type of a kOther entry in errors
  std::string path;
  std::string link_target;  // symlink target, or hard link target path
  uint32_t mode = 0;        // permission bits incl. setuid/setgid/sticky
  int64_t uid = 0, gid = 0;
  int64_t mtime = 0;
  uint32_t mtime_nsec = 0;
  uint64_t size = 0;  // regular files: the (logical) size of the data
  int64_t dev_major = 0, dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // the SCHILY.xattr.* pax records, by name
};

class LayerReader {
 public:
  // Opens a layer file. name is used in error messages (e.g. the layer digest).
  static Result<std::unique_ptr<LayerReader>> Open(const std::string& path, std::string name);
  // A layer held in memory (data must outlive the reader).
  static Result<std::unique_ptr<LayerReader>> OpenMemory(std::string_view data, std::string name);
  // The entries of an already decompressed tar stream (which must outlive the reader).
  static std::unique_ptr<LayerReader> OverTar(ByteSource* tar, std::string name);

  // Reads the next entry's header; false at the end of the archive.
  Result<bool> Next(TarEntry* entry);
  // Streams the current entry's data: fn(offset, data, len); sparse holes arrive as zeros.
  Status ReadData(const std::function<Status(uint64_t offset, const void* data, size_t len)>& fn);
  // Blob bytes consumed so far (for progress).
  uint64_t BytesConsumed() const { return src_->Consumed(); }

 private:
  LayerReader(std::unique_ptr<ByteSource> owned, ByteSource* src, std::string name)
      : owned_(std::move(owned)), src_(src), tar_(src), name_(std::move(name)) {}
  static Result<std::unique_ptr<LayerReader>> Wrap(std::unique_ptr<ByteSource> blob, std::string name);

  std::unique_ptr<ByteSource> owned_;  // the stream, when the reader opened it
  ByteSource* src_;
  TarReader tar_;
  std::string name_;
};

}  // namespace nfc::image
