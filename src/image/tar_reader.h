// TarReader: iterates a tar stream exactly as Go's archive/tar Reader does (Go 1.19: the reader inside
// Docker, containerd, podman, umoci and skopeo), so a layer those tools read is read here with the same
// headers, and one they refuse is refused:
//  - the stream may end right after an entry's data, without its zero padding and without the two zero
//    blocks that end an archive (Debian's umoci 0.4.7 writes layers like that; libarchive calls them
//    "Truncated input file"), or after a single zero block;
//  - a stream that ends inside a header, inside an entry's data, or inside a pax/long-name record is an
//    error (Go: io.ErrUnexpectedEOF), as is a bad checksum or a zero block followed by a non-zero one;
//  - ustar, pax ('x'), GNU ('L'/'K' long names, base-256 numbers, old sparse 'S'), star and V7 headers;
//    GNU sparse files in pax form (0.0, 0.1, 1.0) read back with their holes as zeros. A pax global header
//    ('g') is returned as an entry of its own and not merged into later ones;
//  - links, symlinks, devices, fifos and directories carry no data whatever their size field says, and a
//    V7 regular file whose name ends in "/" is a directory.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "image/layer_stream.h"
#include "image/tar_format.h"

namespace nfc::image {

class TarReader {
 public:
  // src (the decompressed tar stream) must outlive the reader.
  explicit TarReader(ByteSource* src) : src_(src) {}

  // Reads the next entry's header, skipping whatever of the previous entry's data was not read; false at
  // the end of the archive. Errors are sticky.
  Result<bool> Next(tar::Header* h);
  // Streams the current entry's data: fn(offset, data, len), offsets increasing from 0, sparse holes
  // delivered as zeros. At most once per entry.
  Status ReadData(const std::function<Status(uint64_t offset, const char* data, size_t len)>& fn);
  // Bytes of the tar stream consumed so far.
  uint64_t offset() const { return offset_; }

 private:
  struct Span {
    int64_t offset, length;
  };
  Result<bool> NextHeader(tar::Header* h);
  Result<size_t> ReadFull(char* buf, size_t n);
  Status ReadExactly(char* buf, size_t n, const char* what);
  Status Skip(uint64_t n);
  Result<bool> ReadHeaderBlock(std::string* block);
  Status SetDataSize(const tar::Header& h);
  Result<std::string> ReadSpecialFile(const char* what);
  Status SetUpSparse(tar::Header* h, std::string* block);
  Result<std::optional<std::vector<Span>>> ReadOldGnuSparseMap(tar::Header* h, std::string* block);
  Result<std::optional<std::vector<Span>>> ReadPaxSparseMap(tar::Header* h);
  Result<std::vector<Span>> ReadSparseMap1x0();
  Status ReadPhysical(uint64_t logical_offset, uint64_t n,
                      const std::function<Status(uint64_t, const char*, size_t)>& fn);
  Error Fail(Error e);

  ByteSource* src_;
  uint64_t offset_ = 0;        // position in the tar stream
  uint64_t entry_offset_ = 0;  // where the current entry's first header began (for messages)
  uint64_t remaining_ = 0;     // stored data of the current entry not read yet
  uint64_t pad_ = 0;           // padding after the current entry's data
  std::vector<Span> holes_;    // sparse entries: the holes, ending with the (possibly empty) last one
  bool sparse_ = false;
  bool data_read_ = false;
  bool at_end_ = false;
  std::optional<Error> error_;  // sticky, like Go's Reader.err
  std::vector<char> buf_;
  std::vector<char> ahead_;  // read-ahead of the stream
  size_t ahead_pos_ = 0, ahead_len_ = 0;
};

}  // namespace nfc::image
