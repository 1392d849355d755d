// `docker save` archives as an image source: the archive's manifest.json names the config and the layer tars;
// we extract those (only those, by exact name) into a staging blobs directory, content-addressed, and
// describe them with a Docker schema 2 manifest so the rest of the pipeline treats the image like a pulled
// one.
#pragma once

#include <string>

#include "base/error.h"
#include "image/manifest.h"

namespace nfc::image {

struct UnpackedArchive {
  std::string manifest_body;  // synthesized schema 2 manifest (its sha256 is the image's cache key)
  std::string manifest_digest;
  Manifest manifest;
  std::string blobs_dir;  // <staging>/blobs, holding sha256/<hex>
};

// path: the archive; tag: "name:tag" among its RepoTags (empty: the archive must hold exactly one image).
Result<UnpackedArchive> UnpackDockerArchive(const std::string& path, const std::string& tag,
                                            const std::string& staging_dir);

}  // namespace nfc::image
