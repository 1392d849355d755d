#include "image/docker_archive.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "image/cache_fs.h"
#include "image/layer_stream.h"
#include "image/sha256.h"
#include "image/tar_reader.h"

namespace nfc::image {
namespace {

using json = nlohmann::json;

// The archive read like `docker load` reads it (Go's archive/tar), optionally gzip- or zstd-compressed.
struct Tar {
  std::unique_ptr<ByteSource> stream;
  std::unique_ptr<TarReader> reader;
};

Result<Tar> OpenTar(const std::string& path) {
  const std::string what = "docker archive " + path;
  auto file = OpenFileSource(path);
  if (!file.ok()) return Error::InvalidArgument(what + ": " + file.error().message());
  NFC_ASSIGN_OR_RETURN(auto stream, OpenDecompressed(std::move(file).value(), what));
  Tar t;
  t.stream = std::move(stream);
  t.reader = std::make_unique<TarReader>(t.stream.get());
  return t;
}

// The next member, with the archive's path in errors; false at the end.
Result<bool> NextMember(Tar& t, tar::Header* h, const std::string& what) {
  auto more = t.reader->Next(h);
  if (!more.ok()) return std::move(more).error().Context(what);
  return more;
}

std::string Clean(std::string p) {
  while (p.rfind("./", 0) == 0) p = p.substr(2);
  return p;
}

// Pass 1: the archive's manifest.json ("" if there is none).
Result<std::string> ReadManifestJson(const std::string& path, const std::string& what) {
  NFC_ASSIGN_OR_RETURN(Tar t, OpenTar(path));
  tar::Header h;
  while (true) {
    NFC_ASSIGN_OR_RETURN(bool more, NextMember(t, &h, what));
    if (!more) return std::string();
    if (Clean(h.name) != "manifest.json") continue;
    if (h.size > (4 << 20)) return Error::InvalidArgument(what + ": manifest.json too large");
    std::string text;
    NFC_RETURN_IF_ERROR_CTX(t.reader->ReadData([&](uint64_t, const char* data, size_t len) {
      text.append(data, len);
      return Ok();
    }),
                            what + ": read manifest.json");
    return text;
  }
}

// The members that make up one image of the archive.
struct SavedImage {
  std::string config;
  std::vector<std::string> layers;
};

Result<SavedImage> ChooseImage(const std::string& manifest_text, const std::string& tag,
                               const std::string& what) {
  try {
    json j = json::parse(manifest_text);
    if (!j.is_array() || j.empty()) return Error::InvalidArgument(what + ": manifest.json lists no image");
    const json* chosen = nullptr;
    for (const auto& img : j) {
      bool match = tag.empty() ? j.size() == 1 : false;
      if (!tag.empty() && img.contains("RepoTags") && img["RepoTags"].is_array()) {
        for (const auto& t : img["RepoTags"]) match = match || (t.is_string() && t.get<std::string>() == tag);
      }
      if (match) chosen = &img;
    }
    if (!chosen) {
      return Error::NotFound(what + ": " +
                             (tag.empty() ? "several images; name one with docker-archive:PATH:NAME:TAG"
                                          : "no image tagged \"" + tag + "\""));
    }
    SavedImage image;
    image.config = Clean(chosen->at("Config").get<std::string>());
    for (const auto& l : chosen->at("Layers")) image.layers.push_back(Clean(l.get<std::string>()));
    return image;
  } catch (const json::exception& e) {
    return Error::InvalidArgument(what + ": manifest.json: " + e.what());
  }
}

struct Blob {
  std::string digest;
  int64_t size = 0;
};

// Copies the current member into blobs/<hex of its sha256>, hashing it on the way.
Result<Blob> ExtractMember(TarReader* reader, const std::string& name, const std::string& blobs,
                           const std::string& what) {
  std::string tmp = blobs + "/.member-" + TempName();
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return Error::Errno("create " + tmp);
  Sha256 h;
  Blob blob;
  NFC_RETURN_IF_ERROR_CTX(reader->ReadData([&](uint64_t, const char* data, size_t len) -> Status {
    h.Update(data, len);
    for (size_t done = 0; done < len;) {
      ssize_t n = ::write(fd.get(), data + done, len - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Error::Errno("write " + tmp);
      done += static_cast<size_t>(n);
    }
    blob.size += static_cast<int64_t>(len);
    return Ok();
  }),
                          what + ": read " + name);
  blob.digest = h.FinishDigest();
  if (::rename(tmp.c_str(), (blobs + "/" + blob.digest.substr(7)).c_str()) != 0) {
    return Error::Errno("rename " + tmp);
  }
  return blob;
}

// Pass 2: extract exactly the named members (the first of each name), keyed by member name.
Result<std::map<std::string, Blob>> ExtractMembers(const std::string& path,
                                                   const std::set<std::string>& wanted,
                                                   const std::string& blobs, const std::string& what) {
  std::map<std::string, Blob> extracted;
  NFC_ASSIGN_OR_RETURN(Tar t, OpenTar(path));
  tar::Header h;
  while (true) {
    NFC_ASSIGN_OR_RETURN(bool more, NextMember(t, &h, what));
    if (!more) break;
    std::string name = Clean(h.name);
    if (!wanted.count(name) || extracted.count(name)) continue;
    if (h.typeflag != '0' && h.typeflag != 'S') {
      return Error::InvalidArgument(what + ": member " + name + " is not a regular file");
    }
    NFC_ASSIGN_OR_RETURN(extracted[name], ExtractMember(t.reader.get(), name, blobs, what));
  }
  for (const auto& w : wanted) {
    if (!extracted.count(w))
      return Error::InvalidArgument(what + ": member " + w + " named in manifest.json is missing");
  }
  return extracted;
}

// Layer compression is detected from the content (older saves hold plain tars).
std::string LayerMediaType(const std::string& blob_path) {
  unsigned char magic[4] = {0, 0, 0, 0};
  UniqueFd fd(::open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd) (void)!::read(fd.get(), magic, sizeof magic);
  if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
    return std::string(media::kOciLayerZstd);
  }
  if (magic[0] == 0x1f && magic[1] == 0x8b) return std::string(media::kDockerLayerGzip);
  return "application/vnd.docker.image.rootfs.diff.tar";
}

std::string SynthesizeManifest(const SavedImage& image, const std::map<std::string, Blob>& extracted,
                               const std::string& blobs) {
  json m = {{"schemaVersion", 2}, {"mediaType", std::string(media::kDockerManifest)}};
  const Blob& config = extracted.at(image.config);
  m["config"] = {
      {"mediaType", std::string(media::kDockerConfig)}, {"digest", config.digest}, {"size", config.size}};
  m["layers"] = json::array();
  for (const auto& l : image.layers) {
    const Blob& layer = extracted.at(l);
    m["layers"].push_back({{"mediaType", LayerMediaType(blobs + "/" + layer.digest.substr(7))},
                           {"digest", layer.digest},
                           {"size", layer.size}});
  }
  return m.dump();
}

}  // namespace

Result<UnpackedArchive> UnpackDockerArchive(const std::string& path, const std::string& tag,
                                            const std::string& staging) {
  const std::string what = "docker archive " + path;
  NFC_ASSIGN_OR_RETURN(std::string manifest_text, ReadManifestJson(path, what));
  if (manifest_text.empty())
    return Error::InvalidArgument(what + ": no manifest.json (not a `docker save` archive)");
  NFC_ASSIGN_OR_RETURN(SavedImage image, ChooseImage(manifest_text, tag, what));
  std::string blobs = staging + "/blobs/sha256";
  NFC_RETURN_IF_ERROR(MakeDirs(blobs));
  std::set<std::string> wanted(image.layers.begin(), image.layers.end());
  wanted.insert(image.config);
  NFC_ASSIGN_OR_RETURN(auto extracted, ExtractMembers(path, wanted, blobs, what));
  // A Docker schema 2 manifest describing the extracted blobs, so the image goes on like a pulled one.
  UnpackedArchive out;
  out.blobs_dir = staging + "/blobs";
  out.manifest_body = SynthesizeManifest(image, extracted, blobs);
  out.manifest_digest = Sha256::DigestOf(out.manifest_body);
  NFC_ASSIGN_OR_RETURN(out.manifest, ParseManifest(out.manifest_body, media::kDockerManifest));
  return out;
}

}  // namespace nfc::image
