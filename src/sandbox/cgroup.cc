#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/fs.h"
#include "base/unique_fd.h"

namespace nfc::sandbox {
namespace {

constexpr const char* kV1Controllers[] = {"memory", "cpu", "pids"};

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Writes `value` to a cgroup file; the kernel answers a bad value with the write's errno. O_CREAT|O_TRUNC is
// what a shell's `echo > file` does: a no-op on cgroupfs's own files (a name it does not have cannot be
// created there), and it lets the unit tests run against a plain directory tree.
Status WriteControl(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::Errno("open " + path);
  return fs::WriteAll(fd.get(), value, path + " = " + value);
}

// "/a/b" -> {"/a", "/a/b"}
std::vector<std::string> Prefixes(const std::string& path) {
  std::vector<std::string> out;
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
    out.push_back(path.substr(0, at));
  if (path.size() > 1) out.push_back(path);
  return out;
}

Status CheckParentAndName(const std::string& parent, const std::string& name) {
  if (parent.empty() || parent[0] != '/' || parent.find("..") != std::string::npos) {
    return Error::InvalidArgument("cgroup parent \"" + parent + "\" must be an absolute path without \"..\"");
  }
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return Error::InvalidArgument("cgroup name \"" + name + "\" must be one path element");
  }
  return Ok();
}

// v2: the controllers must be enabled in every ancestor's subtree_control, the root's included.
Status EnableV2Controllers(const std::string& root, const std::string& parent) {
  auto available = fs::ReadFile(root + "/cgroup.controllers", 4096);
  if (!available.ok()) return std::move(available).error().Context("cgroup v2 controllers");
  for (const char* c : {"memory", "cpu", "pids"}) {
    if (available->find(c) == std::string::npos) {
      return Error::FailedPrecondition("cgroup v2 controller \"" + std::string(c) +
                                       "\" is not available in " + root +
                                       " (cgroup.controllers: " + *available + ")");
    }
  }
  std::vector<std::string> levels = {""};
  for (const auto& p : Prefixes(parent)) levels.push_back(p);
  for (const auto& level : levels) {
    std::string dir = root + level;
    NFC_RETURN_IF_ERROR(fs::MakeDirs(dir, 0755));
    Status s = WriteControl(dir + "/cgroup.subtree_control", "+memory +cpu +pids");
    if (!s.ok() && s.error().sys_errno() == EBUSY) {
      return std::move(s).error().Context(
          "cgroup " + (level.empty() ? std::string("/") : level) +
          " holds processes, so it cannot delegate controllers to child cgroups (cgroup v2's no-internal-"
          "processes rule): set cgroup_parent to a cgroup of its own");
    }
    NFC_RETURN_IF_ERROR(s);
  }
  return Ok();
}

Status ApplyLimits(CgroupVersion version, const std::string& dir, const std::string& controller,
                   const CgroupLimits& l) {
  for (const auto& [file, value] : LimitFiles(version, l)) {
    if (version == CgroupVersion::kV1 && file.substr(0, file.find('.')) != controller) continue;
    NFC_RETURN_IF_ERROR(WriteControl(dir + "/" + file, value));
  }
  return Ok();
}

}  // namespace

CgroupLimits LimitsForVm(uint64_t memory_mib, uint32_t vcpus, uint64_t cpu_mhz) {
  CgroupLimits l;
  l.memory_bytes = (memory_mib + kVmmMemoryOverheadMib) << 20;
  l.cpu_shares = std::clamp<uint64_t>(cpu_mhz, 2, 262144);
  l.pids_max = 128 + 2 * uint64_t{vcpus};
  return l;
}

std::vector<std::pair<std::string, std::string>> LimitFiles(CgroupVersion version, const CgroupLimits& l) {
  bool v2 = version == CgroupVersion::kV2;
  std::vector<std::pair<std::string, std::string>> files;
  if (l.memory_bytes != 0) {
    files.emplace_back(v2 ? "memory.max" : "memory.limit_in_bytes", std::to_string(l.memory_bytes));
  }
  if (l.cpu_shares != 0) {
    files.emplace_back(v2 ? "cpu.weight" : "cpu.shares",
                       std::to_string(v2 ? CpuWeightFromShares(l.cpu_shares) : l.cpu_shares));
  }
  if (l.cpu_quota_us != 0) {
    uint64_t period = l.cpu_period_us != 0 ? l.cpu_period_us : 100000;  // the kernel's default period
    if (v2) {
      files.emplace_back("cpu.max", std::to_string(l.cpu_quota_us) + " " + std::to_string(period));
    } else {
      files.emplace_back("cpu.cfs_period_us", std::to_string(period));
      files.emplace_back("cpu.cfs_quota_us", std::to_string(l.cpu_quota_us));
    }
  }
  if (l.pids_max != 0) files.emplace_back("pids.max", std::to_string(l.pids_max));
  return files;
}

uint64_t CpuWeightFromShares(uint64_t shares) {
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

Result<CgroupHost> CgroupHost::Detect(const std::string& root) {
  CgroupHost host;
  host.root = root;
  if (fs::Exists(root + "/cgroup.controllers")) {
    host.version = CgroupVersion::kV2;
    return host;
  }
  host.version = CgroupVersion::kV1;
  for (const char* c : kV1Controllers) {
    if (!IsDir(root + "/" + c)) {
      return Error::FailedPrecondition("no cgroup v2 at " + root + " and no cgroup v1 \"" + std::string(c) +
                                       "\" controller at " + root + "/" + c);
    }
  }
  return host;
}

VmCgroup VmCgroup::Existing(const CgroupHost& host, const std::string& parent, const std::string& name) {
  VmCgroup g;
  if (host.version == CgroupVersion::kV2) {
    g.dirs_.push_back(host.root + parent + "/" + name);
  } else {
    for (const char* c : kV1Controllers) g.dirs_.push_back(host.root + "/" + c + parent + "/" + name);
  }
  return g;
}

Result<VmCgroup> VmCgroup::Create(const CgroupHost& host, const std::string& parent, const std::string& name,
                                  const CgroupLimits& limits) {
  NFC_RETURN_IF_ERROR(CheckParentAndName(parent, name));
  if (host.version == CgroupVersion::kV2) NFC_RETURN_IF_ERROR(EnableV2Controllers(host.root, parent));
  VmCgroup g = Existing(host, parent, name);
  for (size_t i = 0; i < g.dirs_.size(); i++) {
    const std::string& dir = g.dirs_[i];
    Status made = fs::MakeDirs(dir.substr(0, dir.rfind('/')), 0755);
    if (made.ok() && ::mkdir(dir.c_str(), 0755) != 0) made = Error::Errno("create cgroup " + dir);
    if (made.ok())
      made =
          ApplyLimits(host.version, dir, host.version == CgroupVersion::kV2 ? "" : kV1Controllers[i], limits);
    if (!made.ok()) {
      // Best effort: what this call made goes; the error reported is the one that stopped it.
      VmCgroup partial;
      partial.dirs_.assign(g.dirs_.begin(), g.dirs_.begin() + static_cast<long>(i) + 1);
      if (Status undone = partial.Remove(); !undone.ok())
        return std::move(made).error().Context(undone.error().message());
      return std::move(made).error();
    }
  }
  return g;
}

std::vector<std::string> VmCgroup::ProcsFiles() const {
  std::vector<std::string> files;
  for (const auto& d : dirs_) files.push_back(d + "/cgroup.procs");
  return files;
}

Status VmCgroup::Remove() const {
  for (const auto& d : dirs_) {
    if (::rmdir(d.c_str()) == 0 || errno == ENOENT) continue;
    if (errno == EBUSY) return Error::FailedPrecondition("cgroup " + d + " still holds processes");
    return Error::Errno("remove cgroup " + d);
  }
  return Ok();
}

}  // namespace nfc::sandbox
