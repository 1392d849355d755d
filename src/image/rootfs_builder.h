// BuildRootfs: layer blobs in, one read-only ext4 image out.
//
// Two passes over the (compressed) layers: the first reads only tar headers and computes the final tree with
// whiteouts applied; the filesystem is then sized and its metadata written; the second pass streams the data
// of exactly the files that survive into their blocks. Nothing is unpacked on the host filesystem.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "image/ext4_writer.h"
#include "image/layer_tree.h"

namespace nfc::image {

struct LayerFile {
  std::string path;   // the blob on disk (tar, tar+gzip or tar+zstd; detected from the content)
  std::string name;   // for messages, e.g. the digest
  uint64_t size = 0;  // compressed size, for progress
  // When set, the blob itself (in memory, outliving the build) instead of the file at path.
  std::optional<std::string_view> bytes;
};

struct RootfsStats {
  TreeStats tree;
  uint64_t image_bytes = 0;  // apparent size of the ext4 file
};

// progress(bytes_done, bytes_total): compressed bytes read over both passes.
using BuildProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Writes the ext4 image to out_path (which should be a temporary name; the caller renames it into place).
Result<RootfsStats> BuildRootfs(const std::vector<LayerFile>& layers, const std::string& out_path,
                                const std::string& label, const BuildProgressFn& progress = {});

// The same two passes with the filesystem supplied by the caller: make_writer gets the geometry the tree
// needs (the fuzz target hands out a pre-formatted image, or refuses trees too big for it).
using MakeWriterFn = std::function<Result<std::unique_ptr<Ext4Writer>>(const Ext4Geometry&)>;
Result<TreeStats> BuildRootfsWith(const std::vector<LayerFile>& layers, const MakeWriterFn& make_writer,
                                  const BuildProgressFn& progress = {});

}  // namespace nfc::image
