// BuildRootfs: layer blobs in, one read-only ext4 image out.
//
// Each layer is read and decompressed exactly once (ScanLayer: headers kept, file data spooled), all layers
// at once on as many threads as there are cores. The headers are then applied layer by layer to compute the
// final tree with whiteouts applied, the filesystem is sized and its metadata written, and the data of
// exactly the files that survive is copied from the spools into their blocks. Nothing is unpacked on the
// host filesystem.
//
// A layer may be read while it is still being downloaded (LayerInput::open follows the growing file); its
// settle() says afterwards whether the bytes read are the verified blob.
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
#include "image/layer_stream.h"
#include "image/layer_tree.h"

namespace nfc::image {

// One layer to convert.
struct LayerInput {
  std::string name;   // for messages, e.g. the digest
  uint64_t size = 0;  // compressed size, for progress
  // The blob's raw bytes (tar, tar+gzip or tar+zstd; detected from the content).
  std::function<Result<std::unique_ptr<ByteSource>>()> open;
  // Called after every read of the layer, whether or not it succeeded: true when the bytes read were the
  // verified blob; false when the blob was rewritten under the reader (a download that started over) and
  // must be read again; an error (the download's) fails the build and is reported instead of the read's.
  // Unset: the bytes are final.
  std::function<Result<bool>()> settle;
  // The image config's rootfs.diff_ids entry for the layer ("sha256:..."), checked against the digest of
  // the uncompressed tar stream as containerd checks it; empty: not checked.
  std::string diff_id;
};

// A layer file on disk, or a blob held in memory (which must outlive the build).
struct LayerFile {
  std::string path;
  std::string name;
  uint64_t size = 0;
  std::optional<std::string_view> bytes;
};
LayerInput ToLayerInput(const LayerFile& file);

struct RootfsStats {
  TreeStats tree;
  uint64_t image_bytes = 0;  // apparent size of the ext4 file
  uint64_t tar_bytes = 0;    // decompressed bytes read, all layers
  int layer_passes = 0;      // how many times a layer was decompressed (== layers unless a read restarted)
  // Where the time went, in seconds: reading the layers (with their downloads, when they overlap), applying
  // the headers, formatting and writing metadata, copying file data, and flushing the image to disk.
  struct {
    double read = 0, apply = 0, metadata = 0, data = 0, sync = 0;
  } seconds;
};

// progress(bytes_done, bytes_total): compressed bytes read. Called on the building thread.
using BuildProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct BuildOptions {
  std::string spool_dir;  // where the layers' spools live; BuildRootfs: beside out_path
  int parallelism = 0;    // layers read at once; 0: one per core
  BuildProgressFn progress;
};

// Writes the ext4 image to out_path (which should be a temporary name; the caller renames it into place).
Result<RootfsStats> BuildRootfs(const std::vector<LayerInput>& layers, const std::string& out_path,
                                const std::string& label, BuildOptions options = {});
Result<RootfsStats> BuildRootfs(const std::vector<LayerFile>& layers, const std::string& out_path,
                                const std::string& label, BuildOptions options = {});

// The same with the filesystem supplied by the caller: make_writer gets the geometry the tree needs (the fuzz
// target hands out a pre-formatted image, or refuses trees too big for it). options.spool_dir is required.
using MakeWriterFn = std::function<Result<std::unique_ptr<Ext4Writer>>(const Ext4Geometry&)>;
Result<RootfsStats> BuildRootfsWith(const std::vector<LayerInput>& layers, const MakeWriterFn& make_writer,
                                    const BuildOptions& options);

}  // namespace nfc::image
