// Configuration from the machine instead of the image: a config drive (a vfat or ISO 9660 filesystem labelled
// `cidata`, NoCloud's label, or `config-2`, OpenStack's) read once at boot. Deliberately a small documented
// subset, not cloud-init (docs/nomados.md, "Cloud configuration at boot"):
//
//   meta-data        `key: value` lines; local-hostname (or hostname) and instance-id are used
//   nomados.cmdline  nomados.* / ip= words, as on the kernel command line, applied after it (network
//   overrides) nomad/           regular files: agent config (*.hcl, *.json: server_join/retry_join go here)
//   and the files
//                    it names (TLS material, a join token); merged over the baked /etc/nomad.d by file name
//
// Every file is optional. The drive's bytes are untrusted: sizes are bounded, names checked, and a bad file
// is reported by name and field and skipped; the baked configuration stays the fallback.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "init/host/cmdline.h"

namespace nfc::init::host {

struct MetaData {
  std::string instance_id;
  std::string hostname;
};

// NoCloud meta-data: one `key: value` per line, `#` comments and blank lines allowed; values may be quoted
// with ' or ". Unknown keys are returned in `ignored` (reported, not fatal: clouds add their own). Errors
// name the line and key.
struct ParsedMetaData {
  MetaData data;
  std::vector<std::string> ignored;
};
Result<ParsedMetaData> ParseMetaData(std::string_view text);

// A hostname the way Linux and DNS accept it: 1..253 chars, dot-separated labels of 1..63 [A-Za-z0-9-], not
// starting or ending with '-'.
bool ValidHostname(std::string_view name);

// The filesystem type ("vfat", "iso9660") and label of a block device from its first 64 KiB, or nullopt when
// it is neither. The label is trimmed of padding spaces.
struct FsLabel {
  std::string type;
  std::string label;
};
std::optional<FsLabel> ProbeFilesystem(std::string_view head);

// A file name from the drive's nomad/ directory that may be copied: [A-Za-z0-9._-], not starting with '.'.
bool SafeConfigFileName(std::string_view name);

// What one configuration source (a config drive, the metadata service: metadata.h) gave, read by the same
// rules whatever the source, so both mean the same thing.
struct CloudConfig {
  std::string source;  // /dev/NAME, or the metadata service's URL
  std::string label;   // the drive's label, or the metadata flavour ("ec2", "openstack")
  MetaData meta;
  std::vector<std::string> cmdline_words;  // from nomados.cmdline
  std::vector<std::string> agent_files;    // names copied into the merged agent config dir
  std::vector<Error> problems;             // per file/field; what was valid is still applied
};
using ConfigDrive = CloudConfig;

// Limits for any source's files.
constexpr size_t kCloudTextLimit = 64 << 10;  // meta-data, nomados.cmdline
constexpr size_t kAgentFileLimit = 1 << 20;   // a config file or a certificate; nothing bigger belongs here
constexpr size_t kAgentFileCount = 64;

// A source's `meta-data` text (ParseMetaData) into `into`: a parse error or unused key becomes a problem.
void ReadMetaDataText(std::string_view text, CloudConfig& into);
// A source's `nomados.cmdline` text: its words, applied after the kernel's.
void ReadCmdlineText(std::string_view text, CloudConfig& into);
// Creates `merged` (0700) with copies of the baked config dir's files, before a source's agent files go in.
void StartMergedConfig(const std::string& baked, const std::string& merged, CloudConfig& into);
// One agent file from a source into `merged` (0600): the name must pass SafeConfigFileName, at most
// kAgentFileLimit bytes and kAgentFileCount files per source. false (and a problem naming `what`) if refused.
bool AddAgentFile(const std::string& merged, const std::string& name, std::string_view data,
                  const std::string& what, CloudConfig& into);

// The options once a source is applied: its nomados.cmdline words after the kernel's (parsed again, so
// the last word wins), hostname precedence nomados.hostname= in the source, then the source's meta-data, then
// the kernel command line.
ParsedHostOptions MergeCloudOptions(const std::vector<std::string>& kernel_words, const HostOptions& current,
                                    const CloudConfig& source);

// Finds a config drive among /sys/class/block devices, mounts it read-only at `mount_point`, reads it, copies
// the baked `baked_config` dir's files and then the drive's nomad/ files into `merged_config` (0700 dir, 0600
// files), unmounts. nullopt: no drive (the baked config applies unchanged).
Result<std::optional<ConfigDrive>> ReadConfigDrive(const std::string& mount_point,
                                                   const std::string& baked_config,
                                                   const std::string& merged_config,
                                                   const std::string& sys_class_block = "/sys/class/block");

}  // namespace nfc::init::host
