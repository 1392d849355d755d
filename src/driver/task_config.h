// TaskConfig: a task's `config { ... }` block for this driver, its schema and its decoder.
//
// Two spellings decode to the same struct: the seed driver's job file verbatim (`vpu_count`, `mem_size`,
// `args` as one string, `env` as a list of "K=V") and what docker-driver users write (`vcpu_count`, `args` as
// a list, `env` as a map, `entrypoint`, `work_dir`, `user`, `auth {}`...). `args` and `env` are typed `any`
// in the schema so every form reaches us; their shape is validated here. Documented in docs/configuration.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "driver/cty_value.h"
#include "driver/plugin_config.h"
#include "driver/spec.h"

namespace nfc::driver {

struct RegistryAuth {
  std::string username;
  std::string password;
  std::string server_address;  // empty: the image's registry
  bool operator==(const RegistryAuth&) const = default;
};

inline constexpr int64_t kMaxVcpuCount = 32;        // Firecracker's limit
inline constexpr int64_t kMaxMemSizeMiB = 1 << 20;  // 1 TiB
inline constexpr int64_t kMinMemSizeMiB = 16;
// The registry part of a pull must be done by then (Docker's driver: 5m; ours also fits slow first pulls).
inline constexpr std::chrono::seconds kDefaultImagePullTimeout{600};
// What one of Nomad's task directories (local, secrets, alloc) may hold in the VM (docs/task-files.md).
inline constexpr uint64_t kDefaultTaskDirMaxBytes = uint64_t{1} << 30;

struct TaskConfig {
  std::string image;                                     // OCI reference, required
  std::optional<int64_t> vcpu_count;                     // vcpu_count, or the seed's vpu_count; unset: sized
                                                         // from Nomad's resources
  std::optional<int64_t> mem_size_mib;                   // unset: the task's `resources { memory }`
  std::optional<std::vector<std::string>> entrypoint;    // replaces the image's ENTRYPOINT
  std::optional<std::string> command;                    // replaces the image's CMD[0] (seed style)
  std::optional<std::vector<std::string>> args;          // arguments after command/entrypoint
  std::vector<std::pair<std::string, std::string>> env;  // in the order given; later entries win
  std::optional<std::string> work_dir;
  std::optional<std::string> user;
  std::optional<std::string> kernel;     // guest kernel override (absolute path on the host)
  std::optional<std::string> initrd;     // guest initramfs override
  std::optional<std::string> boot_args;  // appended to the guest kernel command line
  std::optional<Backend> backend;        // unset: the plugin's backend
  bool force_pull = false;
  std::optional<std::chrono::milliseconds> image_pull_timeout;  // unset: kDefaultImagePullTimeout
  std::optional<RegistryAuth> auth;
  std::optional<uint64_t> task_dir_max_bytes;  // task_dir_max_size: per task directory mirrored into the VM
  std::optional<uint64_t> volume_size_bytes;   // volume_size: a directory volume's disk image, when made
  std::optional<uint64_t> scratch_size_bytes;  // scratch_size: the guest's writable layer over the image
  std::optional<bool> warm_start;              // unset: the plugin's warm_start
  // The docker driver's names (docs/configuration.md):
  bool auth_soft_fail = false;          // a credential that cannot be found or is refused: pull anonymously
  std::optional<std::string> hostname;  // the guest's hostname; wins over the group network's hostname
  std::vector<std::string> dns_servers, dns_search_domains, dns_options;  // the guest's resolv.conf
  std::map<std::string, std::string> labels;  // metadata: the guest's /run/nomad/labels.json, the VM record

  bool operator==(const TaskConfig&) const = default;
};

spec::Node TaskConfigSpec();

Result<TaskConfig> DecodeTaskConfig(const CtyValue& value);
// A hostname the guest can take: RFC 1123 labels (letters, digits, '-', not at either end) joined by dots,
// at most 63 bytes each and 64 in all (the guest's sethostname limit). Errors say what is wrong.
Status CheckHostname(std::string_view name);

// Decodes TaskConfig.msgpack_driver_config.
Result<TaskConfig> DecodeTaskConfigMsgpack(std::string_view msgpack);

// Splits a seed-style argument string into words like a POSIX shell does for quoting only: blanks separate
// words,
// '...' is literal, "..." allows \" \\ \$ \` escapes, a backslash outside quotes escapes the next character.
// No expansion of variables, globs or command substitution. Unbalanced quotes are an error.
Result<std::vector<std::string>> SplitShellWords(std::string_view text);

}  // namespace nfc::driver
