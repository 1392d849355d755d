#include "image/docker_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/unique_fd.h"
#include "image/cache_fs.h"
#include "image/sha256.h"

namespace nfc::image {
namespace {

using json = nlohmann::json;

struct ArchiveCloser {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

Result<std::unique_ptr<struct archive, ArchiveCloser>> OpenTar(const std::string& path) {
  std::unique_ptr<struct archive, ArchiveCloser> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  archive_read_support_filter_gzip(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
    return Error::InvalidArgument("docker archive " + path + ": " + archive_error_string(a.get()));
  }
  return a;
}

std::string Clean(std::string p) {
  while (p.rfind("./", 0) == 0) p = p.substr(2);
  return p;
}

}  // namespace

Result<UnpackedArchive> UnpackDockerArchive(const std::string& path, const std::string& tag,
                                            const std::string& staging) {
  const std::string what = "docker archive " + path;
  // Pass 1: manifest.json.
  std::string manifest_text;
  {
    NFC_ASSIGN_OR_RETURN(auto a, OpenTar(path));
    struct archive_entry* e = nullptr;
    while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
      if (Clean(archive_entry_pathname(e)) != "manifest.json") continue;
      if (archive_entry_size(e) > (4 << 20))
        return Error::InvalidArgument(what + ": manifest.json too large");
      manifest_text.resize(static_cast<size_t>(archive_entry_size(e)));
      if (archive_read_data(a.get(), manifest_text.data(), manifest_text.size()) !=
          static_cast<la_ssize_t>(manifest_text.size())) {
        return Error::DataLoss(what + ": short read of manifest.json");
      }
      break;
    }
  }
  if (manifest_text.empty())
    return Error::InvalidArgument(what + ": no manifest.json (not a `docker save` archive)");
  std::string config_name;
  std::vector<std::string> layer_names;
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
    config_name = Clean(chosen->at("Config").get<std::string>());
    for (const auto& l : chosen->at("Layers")) layer_names.push_back(Clean(l.get<std::string>()));
  } catch (const json::exception& e) {
    return Error::InvalidArgument(what + ": manifest.json: " + e.what());
  }
  // Pass 2: extract exactly the named members, hashing them as they are written.
  std::string blobs = staging + "/blobs/sha256";
  NFC_RETURN_IF_ERROR(MakeDirs(blobs));
  std::map<std::string, std::pair<std::string, int64_t>> extracted;  // member -> digest, size
  std::set<std::string> wanted(layer_names.begin(), layer_names.end());
  wanted.insert(config_name);
  {
    NFC_ASSIGN_OR_RETURN(auto a, OpenTar(path));
    struct archive_entry* e = nullptr;
    std::string buf(1 << 20, '\0');
    while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
      std::string name = Clean(archive_entry_pathname(e));
      if (!wanted.count(name) || extracted.count(name)) continue;
      if (archive_entry_filetype(e) != AE_IFREG) {
        return Error::InvalidArgument(what + ": member " + name + " is not a regular file");
      }
      std::string tmp = blobs + "/.member-" + TempName();
      UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd) return Error::Errno("create " + tmp);
      Sha256 h;
      int64_t size = 0;
      la_ssize_t n;
      while ((n = archive_read_data(a.get(), buf.data(), buf.size())) > 0) {
        h.Update(buf.data(), static_cast<size_t>(n));
        if (::write(fd.get(), buf.data(), static_cast<size_t>(n)) != n) return Error::Errno("write " + tmp);
        size += n;
      }
      if (n < 0) return Error::DataLoss(what + ": read " + name + ": " + archive_error_string(a.get()));
      std::string digest = h.FinishDigest();
      if (::rename(tmp.c_str(), (blobs + "/" + digest.substr(7)).c_str()) != 0)
        return Error::Errno("rename " + tmp);
      extracted[name] = {digest, size};
    }
  }
  for (const auto& w : wanted) {
    if (!extracted.count(w))
      return Error::InvalidArgument(what + ": member " + w + " named in manifest.json is missing");
  }
  // The synthesized manifest; layer compression is detected from the content (older saves hold plain tars).
  UnpackedArchive out;
  out.blobs_dir = staging + "/blobs";
  json m = {{"schemaVersion", 2}, {"mediaType", std::string(media::kDockerManifest)}};
  m["config"] = {{"mediaType", std::string(media::kDockerConfig)},
                 {"digest", extracted[config_name].first},
                 {"size", extracted[config_name].second}};
  m["layers"] = json::array();
  for (const auto& l : layer_names) {
    const auto& [digest, size] = extracted[l];
    unsigned char magic[4] = {0, 0, 0, 0};
    UniqueFd fd(::open((blobs + "/" + digest.substr(7)).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) (void)!::read(fd.get(), magic, sizeof magic);
    std::string type = "application/vnd.docker.image.rootfs.diff.tar";
    if (magic[0] == 0x1f && magic[1] == 0x8b) type = std::string(media::kDockerLayerGzip);
    if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
      type = std::string(media::kOciLayerZstd);
    }
    m["layers"].push_back({{"mediaType", type}, {"digest", digest}, {"size", size}});
  }
  out.manifest_body = m.dump();
  out.manifest_digest = Sha256::DigestOf(out.manifest_body);
  NFC_ASSIGN_OR_RETURN(out.manifest, ParseManifest(out.manifest_body, media::kDockerManifest));
  return out;
}

}  // namespace nfc::image
