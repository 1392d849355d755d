#include "test_layers.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "image/sha256.h"

namespace nfc::image::testing {

std::string Sha256Hex(const std::string& data) {
  return Sha256::DigestOf(data).substr(7);
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::abort();
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteFileOrDie(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

Result<std::string> WriteLayer(const std::string& path, const std::vector<E>& entries,
                               const std::string& compression) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (compression == "gzip") archive_write_add_filter_gzip(a);
  if (compression == "zstd") archive_write_add_filter_zstd(a);
  if (archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK) {
    std::string m = archive_error_string(a);
    archive_write_free(a);
    return Error::Internal("open " + path + ": " + m);
  }
  for (const auto& e : entries) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    archive_entry_set_mtime(ae, e.mtime, 0);
    archive_entry_set_perm(ae, e.mode);
    switch (e.type) {
      case 'f':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.content.size()));
        break;
      case 'd':
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.content.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e.content.c_str());
        archive_entry_set_size(ae, 0);
        break;
      case 'c':
      case 'b':
        archive_entry_set_filetype(ae, e.type == 'c' ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(ae, e.dev_major);
        archive_entry_set_rdevminor(ae, e.dev_minor);
        break;
      case 'p':
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
    }
    for (const auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
    if (archive_write_header(a, ae) != ARCHIVE_OK) {
      std::string m = archive_error_string(a);
      archive_entry_free(ae);
      archive_write_free(a);
      return Error::Internal("write header " + e.path + ": " + m);
    }
    if (e.type == 'f' && !e.content.empty()) archive_write_data(a, e.content.data(), e.content.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return "sha256:" + Sha256Hex(ReadFileOrDie(path));
}

namespace {

std::string PutBlob(const std::string& dir, const std::string& data) {
  std::string hex = Sha256Hex(data);
  WriteFileOrDie(dir + "/blobs/sha256/" + hex, data);
  return hex;
}

}  // namespace

Result<std::string> WriteOciLayout(const std::string& dir, const std::string& tag,
                                   const std::vector<TestImage>& images) {
  using json = nlohmann::json;
  std::string cmd = "mkdir -p '" + dir + "/blobs/sha256'";
  if (std::system(cmd.c_str()) != 0) return Error::Internal("mkdir " + dir);
  WriteFileOrDie(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  json manifests = json::array();
  for (const auto& img : images) {
    json layers = json::array();
    json diff_ids = json::array();
    for (const auto& [entries, compression] : img.layers) {
      std::string tmp = dir + "/layer.tmp";
      NFC_ASSIGN_OR_RETURN(std::string digest, WriteLayer(tmp, entries, compression));
      std::string data = ReadFileOrDie(tmp);
      std::remove(tmp.c_str());
      PutBlob(dir, data);
      std::string type = "application/vnd.oci.image.layer.v1.tar";
      if (compression == "gzip") type += "+gzip";
      if (compression == "zstd") type += "+zstd";
      layers.push_back({{"mediaType", type}, {"digest", digest}, {"size", data.size()}});
      // The diff_id: the digest of the same tar without compression (libarchive writes the same archive and
      // compresses it after).
      NFC_ASSIGN_OR_RETURN(std::string diff_id, WriteLayer(tmp, entries, ""));
      std::remove(tmp.c_str());
      diff_ids.push_back(diff_id);
    }
    json cfg = json::parse(img.config_json);
    cfg["architecture"] = img.architecture;
    cfg["os"] = "linux";
    cfg["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
    std::string cfg_data = cfg.dump();
    std::string cfg_hex = PutBlob(dir, cfg_data);
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"config",
                      {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                       {"digest", "sha256:" + cfg_hex},
                       {"size", cfg_data.size()}}},
                     {"layers", layers}};
    std::string m = manifest.dump();
    std::string m_hex = PutBlob(dir, m);
    manifests.push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                         {"digest", "sha256:" + m_hex},
                         {"size", m.size()},
                         {"platform", {{"os", "linux"}, {"architecture", img.architecture}}}});
  }
  json top;
  if (manifests.size() == 1) {
    top = manifests[0];
    top.erase("platform");
  } else {
    json index = {{"schemaVersion", 2},
                  {"mediaType", "application/vnd.oci.image.index.v1+json"},
                  {"manifests", manifests}};
    std::string data = index.dump();
    std::string hex = PutBlob(dir, data);
    top = {{"mediaType", "application/vnd.oci.image.index.v1+json"},
           {"digest", "sha256:" + hex},
           {"size", data.size()}};
  }
  top["annotations"] = {{"org.opencontainers.image.ref.name", tag}};
  json index;
  std::string index_path = dir + "/index.json";
  FILE* f = std::fopen(index_path.c_str(), "r");
  if (f) {
    std::fclose(f);
    index = json::parse(ReadFileOrDie(index_path));
  } else {
    index = {{"schemaVersion", 2}, {"manifests", json::array()}};
  }
  index["manifests"].push_back(top);
  WriteFileOrDie(index_path, index.dump());
  return top["digest"].get<std::string>();
}

}  // namespace nfc::image::testing
