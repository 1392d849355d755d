// Test helper: builds layer tarballs (tar, tar+gzip, tar+zstd; pax headers with xattrs) and OCI image layouts
// from a list of entries, so tests control exactly what an image contains.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace nfc::image::testing {

struct E {
  char type = 'f';  // f file, d dir, l symlink, h hard link, c char dev, b block dev, p fifo
  std::string path;
  uint32_t mode = 0644;
  std::string content;  // file data; link target for l/h
  uint32_t uid = 0, gid = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  int64_t mtime = 1700000000;
  uint32_t dev_major = 0, dev_minor = 0;
};

// Writes a layer to path; compression: "", "gzip" or "zstd". Returns the file's sha256 digest.
Result<std::string> WriteLayer(const std::string& path, const std::vector<E>& entries,
                               const std::string& compression);

struct TestImage {
  std::vector<std::pair<std::vector<E>, std::string>> layers;  // entries + compression
  std::string config_json = R"({"config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}})";
  std::string architecture = "amd64";
};

// Writes (or adds to) an OCI image layout at dir with the images tagged by ref name. With more than one
// image, the tag points at an index with one entry per image platform. Returns the digest of what the tag
// points to.
Result<std::string> WriteOciLayout(const std::string& dir, const std::string& tag,
                                   const std::vector<TestImage>& images);

std::string Sha256Hex(const std::string& data);
std::string ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& data);

}  // namespace nfc::image::testing
