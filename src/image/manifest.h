// OCI / Docker distribution manifests: image indexes (manifest lists), image manifests, and platform
// selection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace nfc::image {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondistGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
}  // namespace media

// The Accept header value for manifest requests (schema1 included so we can refuse it by name).
std::string ManifestAcceptHeader();

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  // Platform (index entries only).
  std::string os, architecture, variant;
};

struct Platform {
  std::string os = "linux";
  std::string architecture;
  std::string variant;
  std::string String() const;
};
// The host's platform in OCI terms (amd64, arm64/v8, ...).
Platform HostPlatform();
// Parses "os/arch[/variant]".
Result<Platform> ParsePlatform(std::string_view text);

enum class ManifestKind { kIndex, kImage };

struct Manifest {
  ManifestKind kind = ManifestKind::kImage;
  std::string media_type;
  Descriptor config;                  // kImage
  std::vector<Descriptor> layers;     // kImage
  std::vector<Descriptor> manifests;  // kIndex
};

// Parses a manifest body. content_type is the HTTP Content-Type (may be empty: then the body's mediaType,
// then the shape decide). Schema1 and unknown types are refused with a clear error.
Result<Manifest> ParseManifest(std::string_view body, std::string_view content_type);

// Picks the entry of an index for the platform (exact variant match preferred; arm64 treats "" and "v8"
// alike).
Result<Descriptor> SelectPlatform(const Manifest& index, const Platform& want);

// The compression of a layer media type: "" (plain tar), "gzip" or "zstd"; an error for types we cannot
// apply.
Result<std::string> LayerCompression(std::string_view media_type);

}  // namespace nfc::image
