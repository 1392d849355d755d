// FetchAndBuild: an image's layers downloaded one after another on a thread of their own while BuildRootfs
// reads each of them as it arrives (all at once, one thread per core).
//
// The image is built only from blobs whose digests verified: a layer read before its download finished
// counts only once the download says so (GrowingBlob), and each layer's uncompressed digest is checked
// against the image config's rootfs.diff_ids. A layer listed twice in the manifest is fetched, and locked in
// the cache, once.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "image/growing_blob.h"
#include "image/image_config.h"
#include "image/manifest.h"
#include "image/rootfs_builder.h"
#include "image/store.h"

namespace nfc::image {

// How the cache gets a blob for a reader (the Store's side).
struct LayerFetcher {
  // Makes the blob complete in the cache, handing its file to the reader as it is written; returns the hold
  // (a shared lock) that keeps garbage collection away from it.
  std::function<Result<UniqueFd>(const Descriptor&, GrowingBlob*)> ensure;
  // Hands a blob already complete in the cache to a reader.
  std::function<Status(const Descriptor&, GrowingBlob*)> attach_cached;
};

// Writes staging/rootfs.ext4; the blobs' holds are appended to holds (also on failure).
Result<RootfsStats> FetchAndBuild(const Manifest& m, const ImageConfig& config, const LayerFetcher& fetch,
                                  const std::string& staging, const std::string& label,
                                  const ProgressFn& report, std::vector<UniqueFd>* holds);

}  // namespace nfc::image
