// ScanLayer: one pass over one layer blob, the only time its bytes are decompressed.
//
// It keeps what the tree needs (every entry's header, in order) and puts the data of every regular file
// into a spool, an unlinked temporary file, at a block-aligned offset. Which of those files survive is
// known only once the layers above are applied; the survivors are then copied from the spool into the
// image inside the kernel (copy_file_range), and the spool goes away with its last descriptor. Layers scan
// independently of each other, so a multi-layer image decompresses in parallel.
//
// Cost, against reading each layer twice (headers, then data): the data of overridden files is spooled for
// nothing, and the spool takes as much space as the layers' file content while the image is built (page
// cache first: it is unlinked, so it is written to disk only under memory pressure).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/layer_reader.h"
#include "image/layer_stream.h"

namespace nfc::image {

inline constexpr uint64_t kNoData = std::numeric_limits<uint64_t>::max();

struct LayerScan {
  std::vector<TarEntry> entries;  // in archive order; Apply() takes them with their index
  std::vector<uint64_t> data_at;  // per entry: spool offset of a regular file's data, or kNoData
  UniqueFd spool;                 // readable; closed when the scan is dropped
  uint64_t tar_bytes = 0;         // decompressed bytes read (the whole tar stream)
  std::string tar_digest;  // "sha256:..." of the whole tar stream: what an image config's diff_id names
};

// Reads the tar stream of blob (compressed or not) to its end. spool_dir names where the spool lives (the
// filesystem of the image being built, so that copy_file_range stays in one filesystem). consumed, when
// given, follows the compressed bytes read (for progress, from another thread); cancel stops the scan early
// with kCancelled.
Result<LayerScan> ScanLayer(std::unique_ptr<ByteSource> blob, const std::string& name,
                            const std::string& spool_dir, std::atomic<uint64_t>* consumed = nullptr,
                            const std::atomic<bool>* cancel = nullptr);

}  // namespace nfc::image
