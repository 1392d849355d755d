#include "image/store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "base/log.h"
#include "base/process.h"
#include "image/blob_source.h"
#include "image/cache_fs.h"
#include "image/docker_archive.h"
#include "image/growing_blob.h"
#include "image/layer_fetch.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/registry_client.h"
#include "image/rootfs_builder.h"
#include "image/sha256.h"

// Cache layout under the root (every entry appears by rename(2), so a present entry is a complete one):
//   blobs/sha256/<hex>          verified blobs: manifests' configs and compressed layers
//   images/<hex>/               one converted image per platform manifest digest:
//       rootfs.ext4 config.json (ImageConfig) oci-config.json manifest.json meta.json (mtime = last use)
//   refs/<escaped ref>@<platform>  the manifest digest a reference resolved to (for pulls without force_pull)
//   leases/<hex>/<holder>       tasks using an image; such images are never garbage-collected
//   locks/                      flock files: image-<hex>.lock, blob-<hex>.lock (single flight, GC exclusion)
//   tmp/<pid>-<random>...       staging; entries of dead processes are removed on Open
namespace nfc::image {

using json = nlohmann::json;

namespace {

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class Store::Impl {
 public:
  explicit Impl(StoreOptions o) : opt_(std::move(o)) {}

  Status Init() {
    for (const char* d : {"blobs/sha256", "images", "refs", "leases", "locks", "tmp"}) {
      NFC_RETURN_IF_ERROR(MakeDirs(opt_.root + "/" + d));
    }
    // Staging left by processes that died mid-pull: never used, removed here.
    NFC_ASSIGN_OR_RETURN(auto names, ListDir(opt_.root + "/tmp"));
    for (const auto& n : names) {
      pid_t pid = std::atoi(n.c_str());
      if (pid > 0 && ::kill(pid, 0) == 0 && pid != ::getpid()) continue;
      if (pid == ::getpid()) continue;
      (void)RemoveTree(opt_.root + "/tmp/" + n);
    }
    return Ok();
  }

  std::string ImageDir(std::string_view hex) const { return opt_.root + "/images/" + std::string(hex); }
  std::string BlobPath(std::string_view digest) const {
    return opt_.root + "/blobs/sha256/" + std::string(DigestHex(digest));
  }
  std::string LockFile(const std::string& name) const { return opt_.root + "/locks/" + name + ".lock"; }
  bool ImageComplete(std::string_view hex) const { return PathExists(ImageDir(hex) + "/meta.json"); }

  void Touch(std::string_view hex) {
    std::string p = ImageDir(hex) + "/meta.json";
    ::utimensat(AT_FDCWD, p.c_str(), nullptr, 0);
  }

  Result<ImageHandle> LoadImage(std::string_view hex, const std::string& reference) {
    ImageHandle h;
    h.reference = reference;
    h.manifest_digest = "sha256:" + std::string(hex);
    h.rootfs_path = ImageDir(hex) + "/rootfs.ext4";
    h.config_path = ImageDir(hex) + "/config.json";
    NFC_ASSIGN_OR_RETURN(std::string cfg, ReadWholeFile(h.config_path));
    NFC_ASSIGN_OR_RETURN(h.config, ImageConfigFromJson(cfg));
    struct stat st {};
    if (::stat(h.rootfs_path.c_str(), &st) != 0) return Error::Errno("stat " + h.rootfs_path);
    h.rootfs_bytes = static_cast<uint64_t>(st.st_size);
    return h;
  }

  Status AddLease(std::string_view hex, std::string_view holder) {
    if (holder.empty()) return Error::InvalidArgument("lease holder must not be empty");
    std::string dir = opt_.root + "/leases/" + std::string(hex);
    NFC_RETURN_IF_ERROR(MakeDirs(dir));
    json j = {{"holder", std::string(holder)}, {"since", NowUnix()}};
    return WriteFileAtomic(dir + "/" + EscapeName(std::string(holder)), j.dump() + "\n");
  }

  std::vector<std::string> LeaseHolders(std::string_view hex) {
    std::vector<std::string> out;
    auto names = ListDir(opt_.root + "/leases/" + std::string(hex));
    if (!names.ok()) return out;
    for (const auto& n : *names) {
      if (n.rfind(".tmp-", 0) == 0) continue;
      auto text = ReadWholeFile(opt_.root + "/leases/" + std::string(hex) + "/" + n);
      std::string holder = n;
      if (text.ok()) {
        try {
          holder = json::parse(*text).value("holder", n);
        } catch (const json::exception&) {
        }
      }
      out.push_back(holder);
    }
    return out;
  }

  // Downloads (or copies) a blob into the cache once; returns a shared lock that keeps GC away from it. With
  // growing, the file is handed to it as it is written (or as it is, when already cached), so the caller can
  // read it meanwhile; growing->Finish is the caller's.
  Result<UniqueFd> EnsureBlob(BlobSource* source, const Descriptor& d,
                              const std::function<void(uint64_t)>& on_bytes, GrowingBlob* growing = nullptr) {
    NFC_RETURN_IF_ERROR(ValidateDigest(d.digest));
    std::string hex(DigestHex(d.digest));
    std::string path = BlobPath(d.digest);
    NFC_ASSIGN_OR_RETURN(UniqueFd lock,
                         LockPath(LockFile("blob-" + hex), /*exclusive=*/true, /*blocking=*/true));
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && st.st_size == d.size) {
      if (growing) NFC_RETURN_IF_ERROR(AttachCached(d, growing));
      if (on_bytes) on_bytes(static_cast<uint64_t>(d.size));
    } else {
      std::string tmp = opt_.root + "/tmp/" + TempName() + ".blob";
      UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd) return Error::Errno("create " + tmp);
      if (growing) {
        UniqueFd reader(::dup(fd.get()));  // O_CLOEXEC is per descriptor: dup's copy must be marked again
        if (!reader || ::fcntl(reader.get(), F_SETFD, FD_CLOEXEC) != 0) return Error::Errno("dup " + tmp);
        growing->Attach(std::move(reader));
      }
      Status s = source->Fetch(d, fd.get(), [&](uint64_t n) {
        if (growing) growing->Grew(n);
        if (on_bytes) on_bytes(n);
      });
      if (s.ok() && ::fsync(fd.get()) != 0) s = Error::Errno("fsync " + tmp);
      if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Error::Errno("rename " + tmp);
      if (!s.ok()) {
        ::unlink(tmp.c_str());
        return std::move(s).error();
      }
    }
    if (::flock(lock.get(), LOCK_SH) != 0) return Error::Errno("flock blob " + hex);
    return lock;
  }

  Result<ImageHandle> Convert(const std::string& manifest_digest, const std::string& manifest_body,
                              const Manifest& m, BlobSource* source, const std::string& reference,
                              const PullOptions& opts, const ProgressFn& progress) {
    std::string hex(DigestHex(manifest_digest));
    auto report = [&](const Progress& p) {
      if (progress) progress(p);
    };
    NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockPath(LockFile("image-" + hex), true, false));
    if (!lock) {
      report({Progress::Phase::kWaiting, "Waiting for another pull of this image", 0, 0, 0, 0});
      NFC_ASSIGN_OR_RETURN(lock, LockPath(LockFile("image-" + hex), true, true));
    }
    if (!ImageComplete(hex)) {
      NFC_RETURN_IF_ERROR(BuildImage(hex, manifest_body, m, source, opts, report));
    }
    Touch(hex);
    if (!opts.lease_holder.empty()) NFC_RETURN_IF_ERROR(AddLease(hex, opts.lease_holder));
    lock.Reset();
    NFC_ASSIGN_OR_RETURN(ImageHandle h, LoadImage(hex, reference));
    report({Progress::Phase::kDone, "Image ready", h.rootfs_bytes, h.rootfs_bytes, 0, 0});
    if (opt_.max_bytes > 0) {
      auto pr = Prune(false, 0);
      if (!pr.ok()) log::Warn("image cache garbage collection failed", {{"error", pr.error().message()}});
    }
    return h;
  }

  // Hands a blob already complete in the cache to a reader.
  Status AttachCached(const Descriptor& d, GrowingBlob* growing) {
    std::string path = BlobPath(d.digest);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Error::Errno("open " + path);
    growing->Attach(std::move(fd));
    growing->Grew(static_cast<uint64_t>(d.size));
    return Ok();
  }

  Status BuildImage(const std::string& hex, const std::string& manifest_body, const Manifest& m,
                    BlobSource* source, const PullOptions& opts,
                    const std::function<void(Progress)>& report) {
    (void)opts;
    for (const auto& l : m.layers) {  // refuse unsupported layer types before downloading anything
      if (auto c = LayerCompression(l.media_type); !c.ok())
        return std::move(c).error().Context("layer " + l.digest);
    }
    if (m.config.size > (8 << 20)) return Error::InvalidArgument("image config larger than 8 MiB");
    std::vector<UniqueFd> holds;
    NFC_ASSIGN_OR_RETURN(UniqueFd cfg_hold, EnsureBlob(source, m.config, {}));
    holds.push_back(std::move(cfg_hold));
    NFC_ASSIGN_OR_RETURN(std::string raw_config, ReadWholeFile(BlobPath(m.config.digest), 8 << 20));
    NFC_ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(raw_config));

    std::string staging = opt_.root + "/tmp/" + TempName();
    NFC_RETURN_IF_ERROR(MakeDirs(staging));
    auto fail = [&](Error e) -> Status {
      (void)RemoveTree(staging);
      return e;
    };
    LayerFetcher fetcher{[&](const Descriptor& d, GrowingBlob* g) { return EnsureBlob(source, d, {}, g); },
                         [&](const Descriptor& d, GrowingBlob* g) { return AttachCached(d, g); }};
    auto stats = FetchAndBuild(m, config, fetcher, staging, "nfc-" + hex.substr(0, 12), report, &holds);
    if (!stats.ok()) return fail(std::move(stats).error().Context("build root filesystem"));
    json meta = {{"manifest_digest", "sha256:" + hex},
                 {"created", NowUnix()},
                 {"files", stats->tree.regular_files},
                 {"dirs", stats->tree.dirs},
                 {"content_bytes", stats->tree.file_bytes},
                 {"rootfs_bytes", stats->image_bytes},
                 {"tar_bytes", stats->tar_bytes},
                 {"layer_passes", stats->layer_passes},
                 {"build_seconds",
                  {{"read", stats->seconds.read},
                   {"apply", stats->seconds.apply},
                   {"metadata", stats->seconds.metadata},
                   {"data", stats->seconds.data},
                   {"sync", stats->seconds.sync}}},
                 {"layers", json::array()}};
    for (const auto& l : m.layers) meta["layers"].push_back(l.digest);
    meta["config"] = m.config.digest;
    for (auto [name, data] : {std::pair<std::string, std::string>{"config.json", ImageConfigToJson(config)},
                              {"oci-config.json", raw_config},
                              {"manifest.json", manifest_body},
                              {"meta.json", meta.dump(2) + "\n"}}) {
      Status s = WriteFileAtomic(staging + "/" + name, data);
      if (!s.ok()) return fail(std::move(s).error());
    }
    if (::rename(staging.c_str(), ImageDir(hex).c_str()) != 0) {
      return fail(Error::Errno("rename " + staging + " to " + ImageDir(hex)));
    }
    UniqueFd d(::open((opt_.root + "/images").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d) ::fsync(d.get());
    log::Info("image converted", {{"manifest", "sha256:" + hex},
                                  {"files", stats->tree.regular_files},
                                  {"rootfs_bytes", stats->image_bytes},
                                  {"tar_bytes", stats->tar_bytes},
                                  {"layer_passes", stats->layer_passes}});
    return Ok();
  }

  // The reference file only saves a later pull a registry round trip: failing to write it (a full disk) must
  // not fail a pull whose image, and lease, are complete (the caller would not know of the lease).
  void RememberReference(const std::string& key, const std::string& digest) {
    Status s = WriteFileAtomic(key, digest);
    if (!s.ok()) {
      log::Warn(
          "image cache: could not record which image a reference names; the next pull asks the registry",
          {{"path", key}, {"error", s.error().message()}});
    }
  }

  std::string RefKey(const std::string& normalized, const std::string& platform) {
    return opt_.root + "/refs/" + EscapeName(normalized + "@" + platform);
  }

  Result<ImageHandle> Resolve(std::string_view text, const PullOptions& opts, const ProgressFn& progress) {
    std::string reference(text);
    Platform platform = HostPlatform();
    if (!opts.platform.empty()) {
      NFC_ASSIGN_OR_RETURN(platform, ParsePlatform(opts.platform));
    }
    auto deadline = std::chrono::steady_clock::now() + opts.timeout;
    if (reference.rfind("oci:", 0) == 0) {
      return ResolveOciLayout(reference.substr(4), platform, opts, progress);
    }
    if (reference.rfind("docker-archive:", 0) == 0) {
      return ResolveDockerArchive(reference.substr(15), opts, progress);
    }
    NFC_ASSIGN_OR_RETURN(Reference ref, ParseReference(reference));
    const std::string normalized = ref.String();
    const std::string key = RefKey(normalized, platform.String());
    if (!opts.force_pull) {
      if (auto cached = ReadWholeFile(key, 1024); cached.ok() && ImageComplete(DigestHex(*cached))) {
        std::string hex(DigestHex(*cached));
        if (!opts.lease_holder.empty()) NFC_RETURN_IF_ERROR(LeaseUnderLock(hex, opts.lease_holder));
        Touch(hex);
        return LoadImage(hex, normalized);
      }
    }
    if (progress) progress({Progress::Phase::kResolving, "Resolving " + normalized, 0, 0, 0, 0});
    RegistryOptions ro;
    ro.auth = opts.auth;
    ro.docker_config = opts.docker_config;
    ro.auth_soft_fail = opts.auth_soft_fail;
    ro.insecure_registries = opts.insecure_registries;
    ro.ca_file = opts.ca_file;
    ro.retry = opts.retry;
    ro.activity_timeout = opts.activity_timeout;
    ro.deadline = deadline;
    ro.deadline_name = "image_pull_timeout (" + std::to_string(opts.timeout.count()) + " s)";
    RegistryClient client(ref, ro);
    NFC_ASSIGN_OR_RETURN(FetchedManifest fetched,
                         client.GetManifest(ref.digest.empty() ? ref.tag : ref.digest));
    NFC_ASSIGN_OR_RETURN(Manifest m, ParseManifest(fetched.body, fetched.content_type));
    if (m.kind == ManifestKind::kIndex) {
      NFC_ASSIGN_OR_RETURN(Descriptor d, SelectPlatform(m, platform));
      NFC_ASSIGN_OR_RETURN(fetched, client.GetManifest(d.digest));
      NFC_ASSIGN_OR_RETURN(m, ParseManifest(fetched.body, fetched.content_type));
      if (m.kind != ManifestKind::kImage)
        return Error::InvalidArgument(normalized + ": index inside an index");
    }
    auto source = RegistryBlobSource(&client);
    auto h = Convert(fetched.digest, fetched.body, m, source.get(), normalized, opts, progress);
    if (!h.ok()) return NameFullCache(std::move(h).error(), opt_.root).Context("pull " + normalized);
    RememberReference(key, fetched.digest);
    return h;
  }

  // "oci:/path/to/layout[:tag]": the tag names a manifest or index via org.opencontainers.image.ref.name.
  Result<ImageHandle> ResolveOciLayout(const std::string& spec, const Platform& platform,
                                       const PullOptions& opts, const ProgressFn& progress) {
    std::string dir = spec, tag;
    if (size_t colon = spec.rfind(':');
        colon != std::string::npos && spec.find('/', colon) == std::string::npos) {
      dir = spec.substr(0, colon);
      tag = spec.substr(colon + 1);
    }
    const std::string what = "OCI layout " + dir;
    NFC_ASSIGN_OR_RETURN(std::string index_text, ReadWholeFile(dir + "/index.json", 4 << 20));
    NFC_ASSIGN_OR_RETURN(Manifest index, ParseManifest(index_text, media::kOciIndex));
    json raw;
    try {
      raw = json::parse(index_text);
    } catch (const json::exception& e) {
      return Error::InvalidArgument(what + ": index.json: " + e.what());
    }
    const Descriptor* chosen = nullptr;
    for (size_t i = 0; i < index.manifests.size(); ++i) {
      std::string name;
      const auto& entry = raw["manifests"][i];
      if (entry.contains("annotations") && entry["annotations"].is_object()) {
        name = entry["annotations"].value("org.opencontainers.image.ref.name", "");
      }
      if (tag.empty() ? index.manifests.size() == 1 : name == tag) chosen = &index.manifests[i];
    }
    if (!chosen) {
      return Error::NotFound(
          what + ": " +
          (tag.empty() ? "several images; name one with oci:DIR:TAG" : "no image tagged \"" + tag + "\""));
    }
    auto source = DirectoryBlobSource(dir + "/blobs");
    auto read_blob = [&](const Descriptor& d) -> Result<std::string> {
      std::string tmp = opt_.root + "/tmp/" + TempName() + ".manifest";
      UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd) return Error::Errno("create " + tmp);
      Status s = source->Fetch(d, fd.get(), {});
      auto text = s.ok() ? ReadWholeFile(tmp, 4 << 20) : Result<std::string>(std::move(s).error());
      ::unlink(tmp.c_str());
      return text;
    };
    Descriptor desc = *chosen;
    NFC_ASSIGN_OR_RETURN(std::string body, read_blob(desc));
    NFC_ASSIGN_OR_RETURN(Manifest m, ParseManifest(body, desc.media_type));
    if (m.kind == ManifestKind::kIndex) {
      NFC_ASSIGN_OR_RETURN(desc, SelectPlatform(m, platform));
      NFC_ASSIGN_OR_RETURN(body, read_blob(desc));
      NFC_ASSIGN_OR_RETURN(m, ParseManifest(body, desc.media_type));
      if (m.kind != ManifestKind::kImage) return Error::InvalidArgument(what + ": index inside an index");
    }
    std::string reference = "oci:" + spec;
    if (!opts.force_pull && ImageComplete(DigestHex(desc.digest))) {
      std::string hex(DigestHex(desc.digest));
      if (!opts.lease_holder.empty()) NFC_RETURN_IF_ERROR(LeaseUnderLock(hex, opts.lease_holder));
      Touch(hex);
      return LoadImage(hex, reference);
    }
    auto h = Convert(desc.digest, body, m, source.get(), reference, opts, progress);
    if (!h.ok()) return NameFullCache(std::move(h).error(), opt_.root).Context("import " + reference);
    RememberReference(RefKey(reference, platform.String()), desc.digest);
    return h;
  }

  // "docker-archive:/path/image.tar[:name:tag]".
  Result<ImageHandle> ResolveDockerArchive(const std::string& spec, const PullOptions& opts,
                                           const ProgressFn& progress) {
    std::string path = spec, tag;
    if (size_t colon = spec.find(':'); colon != std::string::npos) {
      path = spec.substr(0, colon);
      tag = spec.substr(colon + 1);
    }
    std::string staging = opt_.root + "/tmp/" + TempName() + ".archive";
    if (progress) progress({Progress::Phase::kResolving, "Reading " + path, 0, 0, 0, 0});
    auto unpacked = UnpackDockerArchive(path, tag, staging);
    if (!unpacked.ok()) {
      (void)RemoveTree(staging);
      return std::move(unpacked).error();
    }
    std::string reference = "docker-archive:" + spec;
    auto source = DirectoryBlobSource(unpacked->blobs_dir);
    auto h = Convert(unpacked->manifest_digest, unpacked->manifest_body, unpacked->manifest, source.get(),
                     reference, opts, progress);
    (void)RemoveTree(staging);
    if (!h.ok()) return NameFullCache(std::move(h).error(), opt_.root).Context("import " + reference);
    RememberReference(RefKey(reference, HostPlatform().String()), unpacked->manifest_digest);
    return h;
  }

  Status LeaseUnderLock(const std::string& hex, std::string_view holder) {
    NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockPath(LockFile("image-" + hex), true, true));
    if (!ImageComplete(hex)) return Error::NotFound("image sha256:" + hex + " is not in the cache");
    return AddLease(hex, holder);
  }

  Result<std::string> DigestFor(std::string_view ref_or_digest) {
    std::string s(ref_or_digest);
    if (s.rfind("sha256:", 0) == 0) {
      NFC_RETURN_IF_ERROR(ValidateDigest(s));
      return s;
    }
    if (s.size() >= 12 && s.size() <= 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos) {
      NFC_ASSIGN_OR_RETURN(auto names, ListDir(opt_.root + "/images"));
      for (const auto& n : names) {
        if (n.rfind(s, 0) == 0) return "sha256:" + n;
      }
    }
    std::string normalized = s;
    if (s.rfind("oci:", 0) != 0) {
      NFC_ASSIGN_OR_RETURN(Reference ref, ParseReference(s));
      normalized = ref.String();
    }
    auto text = ReadWholeFile(RefKey(normalized, HostPlatform().String()), 1024);
    if (!text.ok()) return Error::NotFound("image \"" + s + "\" is not in the cache");
    return *text;
  }

  Result<std::vector<CachedImage>> List() {
    NFC_ASSIGN_OR_RETURN(auto names, ListDir(opt_.root + "/images"));
    std::map<std::string, std::vector<std::string>> refs;
    NFC_ASSIGN_OR_RETURN(auto ref_names, ListDir(opt_.root + "/refs"));
    for (const auto& r : ref_names) {
      if (r.rfind(".tmp-", 0) == 0) continue;
      auto d = ReadWholeFile(opt_.root + "/refs/" + r, 1024);
      if (!d.ok()) continue;
      auto name = UnescapeName(r);
      if (!name) {
        log::Warn("image cache: skipping a reference file whose name is not escaped",
                  {{"path", opt_.root + "/refs/" + r}});
        continue;
      }
      refs[std::string(DigestHex(*d))].push_back(*name);
    }
    std::vector<CachedImage> out;
    for (const auto& hex : names) {
      if (!ImageComplete(hex)) continue;
      CachedImage c;
      c.manifest_digest = "sha256:" + hex;
      c.references = refs[hex];
      c.disk_bytes = DiskUsage(ImageDir(hex));
      struct stat st {};
      if (::stat((ImageDir(hex) + "/meta.json").c_str(), &st) == 0) c.last_used_unix = st.st_mtime;
      c.lease_holders = LeaseHolders(hex);
      out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.last_used_unix > b.last_used_unix; });
    return out;
  }

  // Removes one image if it is neither leased (unless force) nor being pulled. Returns freed bytes.
  Result<uint64_t> RemoveImage(const std::string& hex, bool force) {
    NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockPath(LockFile("image-" + hex), true, false));
    if (!lock) return Error::FailedPrecondition("image sha256:" + hex + " is being pulled or converted");
    auto holders = LeaseHolders(hex);
    if (!holders.empty() && !force) {
      std::string list;
      for (const auto& h : holders) list += (list.empty() ? "" : ", ") + h;
      return Error::FailedPrecondition("image sha256:" + hex + " is in use by: " + list);
    }
    uint64_t bytes = DiskUsage(ImageDir(hex));
    std::string trash = opt_.root + "/tmp/" + TempName() + ".trash";
    if (::rename(ImageDir(hex).c_str(), trash.c_str()) != 0) {
      if (errno == ENOENT) return Error::NotFound("image sha256:" + hex + " is not in the cache");
      return Error::Errno("remove image " + hex);
    }
    NFC_RETURN_IF_ERROR(RemoveTree(trash));
    if (force) (void)RemoveTree(opt_.root + "/leases/" + hex);
    auto refs = ListDir(opt_.root + "/refs");
    if (refs.ok()) {
      for (const auto& r : *refs) {
        auto d = ReadWholeFile(opt_.root + "/refs/" + r, 1024);
        if (d.ok() && DigestHex(*d) == hex) ::unlink((opt_.root + "/refs/" + r).c_str());
      }
    }
    return bytes;
  }

  Result<PruneReport> Prune(bool all, uint64_t target) {
    if (target == 0) target = opt_.max_bytes;
    PruneReport report;
    NFC_ASSIGN_OR_RETURN(auto images, List());
    auto usage = [&] { return DiskUsage(opt_.root + "/images") + DiskUsage(opt_.root + "/blobs"); };
    // Least recently used last in `images`: remove from the back.
    for (auto it = images.rbegin(); it != images.rend(); ++it) {
      if (!all && (target == 0 || usage() <= target)) break;
      if (!it->lease_holders.empty()) continue;
      std::string hex(DigestHex(it->manifest_digest));
      auto freed = RemoveImage(hex, false);
      if (!freed.ok()) continue;  // in use or being pulled: skipped, never forced
      report.removed_images.push_back(it->manifest_digest);
      report.freed_bytes += *freed;
    }
    NFC_RETURN_IF_ERROR(RemoveBlobs(all, target, report));
    return report;
  }

  // Images that tasks used (leases/<hex> exists) and that no task has held for `delay`: the directory's
  // mtime is when its last lease went.
  Result<PruneReport> CollectUnused(std::chrono::milliseconds delay) {
    PruneReport report;
    NFC_ASSIGN_OR_RETURN(auto names, ListDir(opt_.root + "/leases"));
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    for (const auto& hex : names) {
      const std::string dir = opt_.root + "/leases/" + hex;
      struct stat st {};
      if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || !LeaseHolders(hex).empty()) continue;
      const int64_t idle_ms = (int64_t{now.tv_sec} - st.st_mtim.tv_sec) * 1000 +
                              (int64_t{now.tv_nsec} - st.st_mtim.tv_nsec) / 1000000;
      if (idle_ms < delay.count()) continue;
      auto freed = RemoveImage(hex, false);
      if (freed.ok()) {
        report.removed_images.push_back("sha256:" + hex);
        report.freed_bytes += *freed;
      } else if (freed.error().code() != ErrorCode::kNotFound) {
        continue;  // leased again, or being pulled: not unused after all
      }
      // Not empty when a task leased the image again meanwhile: then it stays for the next round.
      ::rmdir(dir.c_str());
    }
    if (!report.removed_images.empty()) NFC_RETURN_IF_ERROR(RemoveBlobs(true, 0, report));
    return report;
  }

  // Blobs no remaining image refers to (and that no pull currently holds); those of cached images too when
  // the cache is over `target` and not pruning `all`.
  Status RemoveBlobs(bool all, uint64_t target, PruneReport& report) {
    auto usage = [&] { return DiskUsage(opt_.root + "/images") + DiskUsage(opt_.root + "/blobs"); };
    std::set<std::string> referenced;
    NFC_ASSIGN_OR_RETURN(auto names, ListDir(opt_.root + "/images"));
    for (const auto& hex : names) {
      auto meta = ReadWholeFile(ImageDir(hex) + "/meta.json", 1 << 20);
      if (!meta.ok()) continue;
      try {
        json j = json::parse(*meta);
        referenced.insert(std::string(DigestHex(j.value("config", ""))));
        for (const auto& l : j["layers"]) referenced.insert(std::string(DigestHex(l.get<std::string>())));
      } catch (const json::exception&) {
      }
    }
    NFC_ASSIGN_OR_RETURN(auto blobs, ListDir(opt_.root + "/blobs/sha256"));
    for (const auto& b : blobs) {
      // Blobs of cached images are kept (re-conversion, layers shared between images) unless over budget.
      if (referenced.count(b) && opt_.keep_layer_blobs && (all || target == 0 || usage() <= target)) continue;
      NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockPath(LockFile("blob-" + b), true, false));
      if (!lock) continue;
      uint64_t bytes = DiskUsage(opt_.root + "/blobs/sha256/" + b);
      if (::unlink((opt_.root + "/blobs/sha256/" + b).c_str()) == 0) {
        ++report.removed_blob_count;
        report.freed_bytes += bytes;
      }
    }
    return Ok();
  }

  StoreOptions opt_;
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(StoreOptions options) {
  if (options.root.empty()) return Error::InvalidArgument("image store root must be set");
  auto impl = std::make_unique<Impl>(std::move(options));
  NFC_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

const std::string& Store::root() const {
  return impl_->opt_.root;
}

Result<ImageHandle> Store::Resolve(std::string_view reference, const PullOptions& options,
                                   const ProgressFn& progress) {
  return impl_->Resolve(reference, options, progress);
}

Status Store::ReleaseLease(std::string_view manifest_digest, std::string_view holder) {
  NFC_RETURN_IF_ERROR(ValidateDigest(manifest_digest));
  std::string path = impl_->opt_.root + "/leases/" + std::string(DigestHex(manifest_digest)) + "/" +
                     EscapeName(std::string(holder));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Error::Errno("release lease " + path);
  return Ok();
}

Result<std::vector<CachedImage>> Store::List() {
  return impl_->List();
}

Status Store::Remove(std::string_view reference_or_digest, bool force) {
  NFC_ASSIGN_OR_RETURN(std::string digest, impl_->DigestFor(reference_or_digest));
  auto r = impl_->RemoveImage(std::string(DigestHex(digest)), force);
  if (!r.ok()) return std::move(r).error();
  return Ok();
}

Result<PruneReport> Store::Prune(bool all, uint64_t target_bytes) {
  return impl_->Prune(all, target_bytes);
}

Result<PruneReport> Store::CollectUnused(std::chrono::milliseconds delay) {
  return impl_->CollectUnused(delay);
}

}  // namespace nfc::image
