// nfc::image::Store: the one entry point the rest of the project uses for OCI images.
//
// It owns the on-disk image cache (content-addressed blobs, one read-only ext4 root filesystem per manifest
// digest, the image config beside it), pulls from registries or reads local sources (OCI layout directories,
// `docker save` archives), and keeps images that running tasks use out of garbage collection with file-based
// leases that survive a restart of the plugin. Nothing here speaks gRPC.
//
// Thread-safety: a Store may be used from many threads; concurrent Resolve() calls for the same image, in
// this process or in other processes sharing the cache directory, download and convert once (flock-based
// single flight).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "image/image_config.h"

namespace nfc::image {

// Credentials for one registry, as a task's `auth` block or a Docker config.json entry gives them.
struct RegistryAuth {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token (config.json "identitytoken"); used instead of password
};

// How often and how patiently one registry request is retried after a transient failure (connection error,
// stalled or cut transfer, 5xx, 429).
struct RetryPolicy {
  int max_attempts = 5;                            // per request, the first one included
  std::chrono::milliseconds initial_backoff{200};  // doubled after each failed attempt, plus up to 50% jitter
};

struct PullOptions {
  std::optional<RegistryAuth> auth;  // the task's `auth` block; nullopt: Docker config.json / helpers
  bool auth_soft_fail = false;       // credentials unreadable or refused: go on anonymously (a warning)
  bool force_pull = false;           // re-resolve the tag at the registry even if the image is cached
  std::vector<std::string> insecure_registries;  // "host[:port]" allowed over plain HTTP or unverified TLS
  std::string ca_file;                           // extra PEM CA bundle, used in addition to the system store
  std::string docker_config;  // path of a Docker config.json; empty: $DOCKER_CONFIG, ~/.docker
  std::string platform;       // "os/arch[/variant]"; empty: the host's
  std::string lease_holder;   // when set, a lease for this holder is taken before returning
  // image_pull_timeout: the registry requests of one pull must be done by then (a slow registry fails with
  // kTimeout). Building the root filesystem afterwards is not cut short.
  std::chrono::seconds timeout{600};
  // pull_activity_timeout: a transfer that receives no byte for this long is abandoned and retried.
  std::chrono::seconds activity_timeout{120};
  RetryPolicy retry;
};

// Progress of one Resolve(), for task events and the CLI's progress bar. Called from the resolving thread.
struct Progress {
  enum class Phase { kResolving, kWaiting, kDownloading, kBuildingRootfs, kDone };
  Phase phase = Phase::kResolving;
  std::string message;       // "Downloading image", "Building root filesystem", ...
  uint64_t bytes_done = 0;   // downloaded (kDownloading) or applied (kBuildingRootfs) bytes
  uint64_t bytes_total = 0;  // 0 when unknown
  int layers_done = 0;
  int layers_total = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

// A converted image, ready to boot.
struct ImageHandle {
  std::string reference;        // as requested, normalized ("docker.io/library/alpine:3")
  std::string manifest_digest;  // "sha256:..." of the platform manifest; the cache key
  std::string rootfs_path;      // read-only ext4 image (attach read-only; never write to it)
  std::string config_path;      // JSON of ImageConfig beside the rootfs
  ImageConfig config;
  uint64_t rootfs_bytes = 0;  // apparent size of rootfs_path
};

struct CachedImage {
  std::string manifest_digest;
  std::vector<std::string> references;
  uint64_t disk_bytes = 0;  // allocated bytes of the converted image
  int64_t last_used_unix = 0;
  std::vector<std::string> lease_holders;
};

struct PruneReport {
  std::vector<std::string> removed_images;  // manifest digests
  uint64_t removed_blob_count = 0;
  uint64_t freed_bytes = 0;
};

// The image cache of a plugin data directory, <data_dir>/images: the plugin, `run` and `image` all use it.
inline std::string StoreRoot(std::string_view data_dir) {
  return std::string(data_dir) + "/images";
}

struct StoreOptions {
  std::string root;              // cache directory, e.g. <plugin data dir>/images; created if missing
  uint64_t max_bytes = 0;        // size limit for blobs + images; 0: unlimited. Enforced after each pull.
  bool keep_layer_blobs = true;  // keep compressed layers after conversion (re-conversion, shared layers)
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Returns the converted image for a reference: "alpine", "library/alpine:3", "ghcr.io/o/r@sha256:...",
  // "localhost:5000/x", or a local source "oci:/path/to/layout[:tag]" / "docker-archive:/path/to/image.tar".
  // Pulls and converts when not cached (or when force_pull finds a new digest).
  Result<ImageHandle> Resolve(std::string_view reference, const PullOptions& options,
                              const ProgressFn& progress = {});

  // Leases keep an image from garbage collection while a task uses it. They are files under the cache root,
  // so they survive restarts of this process; the holder (e.g. the task id) must release it when the task is
  // gone. Resolve takes one when PullOptions::lease_holder is set; this gives it back.
  Status ReleaseLease(std::string_view manifest_digest, std::string_view holder);

  Result<std::vector<CachedImage>> List();
  // Removes a cached image (by reference or digest). Refuses while leased unless force is set.
  Status Remove(std::string_view reference_or_digest, bool force = false);
  // Removes unreferenced blobs and unleased images: all of them (all=true) or least recently used ones until
  // the cache fits target_bytes (0: StoreOptions::max_bytes).
  Result<PruneReport> Prune(bool all, uint64_t target_bytes = 0);
  // The plugin's image GC (`gc { image_delay }`): removes the images that tasks leased and that no task has
  // held for `delay`, then the blobs only they used. Images never leased (pulled by hand) are left alone.
  Result<PruneReport> CollectUnused(std::chrono::milliseconds delay);

  const std::string& root() const;

  class Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Creates a sparse, pre-formatted empty ext4 file of size_bytes at path (the task's writable scratch disk).
// It is a copy (reflink where the filesystem supports it, sparse copy otherwise) of a template formatted once
// per size and cached under template_dir; without template_dir the file is formatted in place.
Status CreateScratchDisk(const std::string& path, uint64_t size_bytes, const std::string& template_dir = {});

}  // namespace nfc::image
