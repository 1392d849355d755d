// The bytes of a layer blob as a tar stream: read from a file or from memory, and decompressed when the blob
// starts with the gzip or zstd magic (layers are tar, tar+gzip or tar+zstd; the media type is not trusted to
// say which, as containerd's DecompressStream does not trust it either).
//
// A compressed stream must be complete: a gzip member or zstd frame cut short is an error, never an early
// end (Go's gzip and zstd readers report io.ErrUnexpectedEOF for it). What the tar inside may lack at its end
// is TarReader's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc::image {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes into buf; 0 only at the end of the stream.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  // Bytes taken from the underlying blob so far (compressed bytes, for progress).
  virtual uint64_t Consumed() const = 0;
};

Result<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path);
// data must outlive the source.
std::unique_ptr<ByteSource> OpenMemorySource(std::string_view data);

// The tar stream of a blob: gzip (any number of members) and zstd (any number of frames) are decompressed,
// anything else passes through unchanged. what names the blob in errors.
Result<std::unique_ptr<ByteSource>> OpenDecompressed(std::unique_ptr<ByteSource> blob, std::string what);

}  // namespace nfc::image
