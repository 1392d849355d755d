#include "init/host/config_drive.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "base/fs.h"
#include "init/host/cmdline.h"

namespace nfc::init::host {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string TrimLabel(std::string_view raw) {
  std::string s(raw);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// Copies the regular files of the drive's directory `src` through AddAgentFile; `what` prefixes errors.
void CopyFiles(const std::string& src, const std::string& dest, const std::string& what, CloudConfig& into) {
  std::error_code ec;
  std::vector<std::filesystem::directory_entry> entries;
  for (const auto& e : std::filesystem::directory_iterator(src, ec)) entries.push_back(e);
  std::sort(entries.begin(), entries.end());
  for (const auto& e : entries) {
    std::string name = e.path().filename();
    if (!SafeConfigFileName(name) || !e.is_regular_file(ec) || e.is_symlink(ec)) {
      into.problems.push_back(
          Error::InvalidArgument(what + "/" + name + ": not a plain file with a safe name; skipped"));
      continue;
    }
    if (into.agent_files.size() == kAgentFileCount) {
      into.problems.push_back(Error::InvalidArgument(what + ": more than " + std::to_string(kAgentFileCount) +
                                                     " files; the rest skipped"));
      break;
    }
    auto data = fs::ReadFile(e.path(), kAgentFileLimit);
    if (!data.ok()) {
      into.problems.push_back(Error::InvalidArgument(what + "/" + name + ": " + data.error().message()));
      continue;
    }
    AddAgentFile(dest, name, *data, what + "/" + name, into);
  }
}

void ReadMounted(const std::string& root, ConfigDrive& drive) {
  if (auto text = fs::ReadFile(root + "/meta-data", kCloudTextLimit); text.ok()) {
    ReadMetaDataText(*text, drive);
  } else if (text.error().code() != ErrorCode::kNotFound) {
    drive.problems.push_back(Error::InvalidArgument("meta-data: " + text.error().message()));
  }
  if (auto text = fs::ReadFile(root + "/nomados.cmdline", kCloudTextLimit); text.ok()) {
    ReadCmdlineText(*text, drive);
  } else if (text.error().code() != ErrorCode::kNotFound) {
    drive.problems.push_back(Error::InvalidArgument("nomados.cmdline: " + text.error().message()));
  }
}

}  // namespace

Result<ParsedMetaData> ParseMetaData(std::string_view text) {
  ParsedMetaData out;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    line_no++;
    if (line.empty() || line.front() == '#') continue;
    std::string where = "line " + std::to_string(line_no);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Error::InvalidArgument(where + ": want `key: value`");
    std::string key(Trim(line.substr(0, colon)));
    std::string_view value = Trim(line.substr(colon + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (key == "local-hostname" || key == "hostname") {
      if (!ValidHostname(value)) {
        return Error::InvalidArgument(where + ": " + key + " '" + std::string(value) +
                                      "' is not a valid hostname");
      }
      out.data.hostname = value;
    } else if (key == "instance-id") {
      if (value.empty() || value.size() > 255)
        return Error::InvalidArgument(where + ": instance-id: 1..255 chars");
      out.data.instance_id = value;
    } else if (key.empty() || key.find_first_of(" \t\"'") != std::string::npos) {
      return Error::InvalidArgument(where + ": bad key '" + key + "'");
    } else {
      out.ignored.push_back(key);
    }
  }
  return out;
}

bool ValidHostname(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

std::optional<FsLabel> ProbeFilesystem(std::string_view head) {
  // ISO 9660: primary volume descriptor at 32 KiB: type 1, "CD001", volume identifier at +40 (32 bytes).
  if (head.size() >= 0x8000 + 72 && head[0x8000] == 1 && head.substr(0x8001, 5) == "CD001") {
    return FsLabel{"iso9660", TrimLabel(head.substr(0x8000 + 40, 32))};
  }
  // FAT: boot signature 0x55AA, "FAT" file system type at 0x36 (FAT12/16, label at 0x2B) or 0x52 (FAT32,
  // label at 0x47).
  if (head.size() < 512 || static_cast<unsigned char>(head[510]) != 0x55 ||
      static_cast<unsigned char>(head[511]) != 0xAA) {
    return std::nullopt;
  }
  if (head.substr(0x36, 3) == "FAT") return FsLabel{"vfat", TrimLabel(head.substr(0x2B, 11))};
  if (head.substr(0x52, 3) == "FAT") return FsLabel{"vfat", TrimLabel(head.substr(0x47, 11))};
  return std::nullopt;
}

bool SafeConfigFileName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Result<std::optional<ConfigDrive>> ReadConfigDrive(const std::string& mount_point,
                                                   const std::string& baked_config,
                                                   const std::string& merged_config,
                                                   const std::string& sys_class_block) {
  std::optional<ConfigDrive> drive;
  std::optional<FsLabel> fs_label;
  std::error_code ec;
  std::vector<std::filesystem::path> devices;
  for (const auto& e : std::filesystem::directory_iterator(sys_class_block, ec)) devices.push_back(e.path());
  std::sort(devices.begin(), devices.end());
  for (const auto& dev : devices) {
    std::string node = "/dev/" + dev.filename().string();
    std::ifstream f(node, std::ios::binary);
    std::string head(64 << 10, '\0');
    f.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(std::max<std::streamsize>(f.gcount(), 0)));
    auto probed = ProbeFilesystem(head);
    std::string label = probed ? probed->label : "";
    std::transform(label.begin(), label.end(), label.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (label == "cidata" || label == "config-2") {
      drive = ConfigDrive{.source = node, .label = label};
      fs_label = probed;
      break;
    }
  }
  if (!drive) return drive;
  std::filesystem::create_directories(mount_point, ec);
  if (::mount(drive->source.c_str(), mount_point.c_str(), fs_label->type.c_str(),
              MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return Error::Errno("mount config drive " + drive->source + " (" + fs_label->type + ")");
  }
  ReadMounted(mount_point, *drive);
  StartMergedConfig(baked_config, merged_config, *drive);
  if (std::filesystem::is_directory(mount_point + "/nomad", ec)) {
    CopyFiles(mount_point + "/nomad", merged_config, "nomad", *drive);
  }
  if (::umount(mount_point.c_str()) != 0) drive->problems.push_back(Error::Errno("umount " + mount_point));
  return drive;
}

void ReadMetaDataText(std::string_view text, CloudConfig& into) {
  auto parsed = ParseMetaData(text);
  if (!parsed.ok()) {
    into.problems.push_back(Error::InvalidArgument("meta-data: " + parsed.error().message()));
    return;
  }
  if (!parsed->data.hostname.empty()) into.meta.hostname = parsed->data.hostname;
  if (!parsed->data.instance_id.empty()) into.meta.instance_id = parsed->data.instance_id;
  for (const auto& k : parsed->ignored) {
    into.problems.push_back(Error::InvalidArgument("meta-data: key '" + k + "' is not used; ignored"));
  }
}

void ReadCmdlineText(std::string_view text, CloudConfig& into) {
  auto words = SplitCmdline(text);
  into.cmdline_words.insert(into.cmdline_words.end(), words.begin(), words.end());
}

void StartMergedConfig(const std::string& baked, const std::string& merged, CloudConfig& into) {
  std::error_code ec;
  std::filesystem::create_directories(merged, ec);
  ::chmod(merged.c_str(), 0700);
  CloudConfig baked_files;  // the baked files count against nothing and are not the source's
  CopyFiles(baked, merged, baked, baked_files);
  into.problems.insert(into.problems.end(), baked_files.problems.begin(), baked_files.problems.end());
}

bool AddAgentFile(const std::string& merged, const std::string& name, std::string_view data,
                  const std::string& what, CloudConfig& into) {
  Error refused = Error::Internal("");
  if (!SafeConfigFileName(name)) {
    refused = Error::InvalidArgument(what + ": name '" + name + "' is not [A-Za-z0-9._-] (no leading dot)");
  } else if (data.size() > kAgentFileLimit) {
    refused = Error::InvalidArgument(what + ": " + std::to_string(data.size()) +
                                     " bytes, over the limit of " + std::to_string(kAgentFileLimit));
  } else if (into.agent_files.size() >= kAgentFileCount) {
    refused = Error::InvalidArgument(what + ": more than " + std::to_string(kAgentFileCount) + " files");
  } else if (auto st = fs::WriteFileDurably(merged + "/" + name, data, 0600); !st.ok()) {
    refused = Error::InvalidArgument(what + ": " + st.error().message());
  } else {
    if (std::find(into.agent_files.begin(), into.agent_files.end(), name) == into.agent_files.end())
      into.agent_files.push_back(name);
    return true;
  }
  into.problems.push_back(std::move(refused));
  return false;
}

ParsedHostOptions MergeCloudOptions(const std::vector<std::string>& kernel_words, const HostOptions& current,
                                    const CloudConfig& source) {
  ParsedHostOptions out;
  out.options = current;
  if (!source.cmdline_words.empty()) {
    std::vector<std::string> words = kernel_words;
    words.insert(words.end(), source.cmdline_words.begin(), source.cmdline_words.end());
    out = ParseHostOptions(words);
  }
  bool source_names_host =
      std::any_of(source.cmdline_words.begin(), source.cmdline_words.end(),
                  [](const std::string& w) { return w.rfind("nomados.hostname=", 0) == 0; });
  if (!source_names_host && !source.meta.hostname.empty()) out.options.hostname = source.meta.hostname;
  return out;
}

}  // namespace nfc::init::host
