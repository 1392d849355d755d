// ImageConfig: the parts of an OCI image config the driver and the guest init need to start the workload.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace nfc::image {

struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value", in image order
  std::string working_dir;
  std::string user;                        // "name", "uid", "uid:gid", "name:group" as the image says
  std::vector<std::string> exposed_ports;  // "80/tcp", sorted
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::string os;
  std::string architecture;
  std::string variant;
  std::vector<std::string>
      diff_ids;  // rootfs.diff_ids: the digest of each layer's uncompressed tar, in order
};

// Parses an OCI/Docker image config blob ({"config": {...}, "os": ..., "rootfs": ...}).
Result<ImageConfig> ParseImageConfig(std::string_view json);
// Our own JSON form of ImageConfig (written beside the rootfs) and back.
std::string ImageConfigToJson(const ImageConfig& config);
Result<ImageConfig> ImageConfigFromJson(std::string_view json);

}  // namespace nfc::image
