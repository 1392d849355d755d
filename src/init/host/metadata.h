// Configuration from the cloud's metadata service over HTTP at 169.254.169.254, the fallback when the machine
// has no config drive (config_drive.h): asked once, after DHCP brought the network up, before the agent
// starts.
//
//   EC2 (IMDSv2 only): PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds), then with
//                      X-aws-ec2-metadata-token: GET /latest/meta-data/{instance-id,hostname},
//                      /latest/user-data
//   OpenStack:         GET /openstack/latest/meta_data.json (uuid, hostname), /openstack/latest/user_data
//
// The user-data carries the same files a config drive does, as one text (docs/nomados.md):
//
//   #nomados-config
//   --- meta-data
//   local-hostname: node-1
//   --- nomados.cmdline
//   nomados.stop_timeout=120
//   --- nomad/cloud.hcl
//   server_join { retry_join = ["10.0.0.10"] }
//
// and each part goes through the config drive's readers (ReadMetaDataText, ReadCmdlineText, AddAgentFile), so
// both sources mean the same thing. User-data not starting with `#nomados-config` (a cloud-init script) is
// reported and ignored. Every response is untrusted: sizes bounded (http_client.h), values checked.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "init/host/config_drive.h"
#include "init/host/http_client.h"

namespace nfc::init::host {

constexpr std::string_view kUserDataMagic = "#nomados-config";
constexpr size_t kUserDataLimit = 256 << 10;

// The parts of a `#nomados-config` user-data. Files are named without the nomad/ prefix.
struct UserDataBundle {
  std::optional<std::string> meta_data;
  std::optional<std::string> cmdline;
  std::vector<std::pair<std::string, std::string>> files;
};

// nullopt: not ours (no magic first line). Errors name the line: a `--- ` line with a name other than
// meta-data, nomados.cmdline or nomad/<safe name>, a part given twice, text before the first part.
Result<std::optional<UserDataBundle>> ParseUserData(std::string_view text);

// OpenStack meta_data.json: "uuid" -> instance_id, "hostname" (checked with ValidHostname). Other members are
// ignored; a non-object or a wrong type is an error naming the member.
Result<MetaData> ParseOpenStackMetaData(std::string_view json);

// An IMDSv2 token as it may go back into a header: 1..1024 chars of [A-Za-z0-9+/=_.-].
bool ValidImdsToken(std::string_view token);

struct MetadataOptions {
  HttpTarget target;                           // 169.254.169.254:80, 1 s connect, 3 s per request
  std::string flavour = "auto";                // auto (EC2, then OpenStack), ec2, openstack
  int attempts = 3;                            // rounds when nothing answers (the service may lag the lease)
  std::chrono::milliseconds retry_delay{500};  // doubled after each round
  std::string baked_config;                    // /etc/nomad.d
  std::string merged_config;                   // /run/nomados/nomad.d
};

// Asks the service. A CloudConfig (source = URL, label = flavour) when a flavour answered; kUnavailable or
// kTimeout when nothing answered in `attempts` rounds; kNotFound when something answered but neither
// flavour's endpoints exist. Either way the caller keeps the baked configuration.
Result<CloudConfig> FetchMetadata(const MetadataOptions& opts);

}  // namespace nfc::init::host
