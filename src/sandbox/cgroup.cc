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

// The v1 hierarchies a VM's cgroup lives in: cpuset too where it is mounted (used only when cores are
// pinned).
std::vector<std::string> V1Controllers(const CgroupHost& host) {
  std::vector<std::string> out(std::begin(kV1Controllers), std::end(kV1Controllers));
  if (host.v1_cpuset) out.emplace_back("cpuset");
  return out;
}

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
Status EnableV2Controllers(const std::string& root, const std::string& parent, bool cpuset) {
  auto available = fs::ReadFile(root + "/cgroup.controllers", 4096);
  if (!available.ok()) return std::move(available).error().Context("cgroup v2 controllers");
  std::vector<std::string> wanted = {"memory", "cpu", "pids"};
  if (cpuset) wanted.emplace_back("cpuset");
  std::string enable;
  for (const auto& c : wanted) enable += (enable.empty() ? "+" : " +") + c;
  for (const auto& c : wanted) {
    if (available->find(c) == std::string::npos) {
      return Error::FailedPrecondition("cgroup v2 controller \"" + c + "\" is not available in " + root +
                                       " (cgroup.controllers: " + *available + ")");
    }
  }
  std::vector<std::string> levels = {""};
  for (const auto& p : Prefixes(parent)) levels.push_back(p);
  for (const auto& level : levels) {
    std::string dir = root + level;
    NFC_RETURN_IF_ERROR(fs::MakeDirs(dir, 0755));
    Status s = WriteControl(dir + "/cgroup.subtree_control", enable);
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

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// v1 cpuset: a new cgroup starts with empty cpuset.cpus and cpuset.mems, and no process may join it until
// both are set, so each level below the hierarchy's root takes its parent's where it has none yet.
Status InheritV1Cpuset(const std::string& hierarchy, const std::string& path) {
  std::string above = hierarchy;
  for (const auto& level : Prefixes(path)) {
    std::string dir = hierarchy + level;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Error::Errno("create cgroup " + dir);
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      auto own = fs::ReadFile(dir + "/" + file, 4096);
      if (own.ok() && !Trimmed(*own).empty()) continue;
      auto inherited = fs::ReadFile(above + "/" + file, 4096);
      if (!inherited.ok()) return std::move(inherited).error().Context("cgroup v1 cpuset of " + above);
      NFC_RETURN_IF_ERROR(WriteControl(dir + "/" + file, Trimmed(*inherited)));
    }
    above = dir;
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
  if (l.memory_soft_bytes != 0) {
    files.emplace_back(v2 ? "memory.low" : "memory.soft_limit_in_bytes", std::to_string(l.memory_soft_bytes));
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
  if (!l.cpuset_cpus.empty()) files.emplace_back("cpuset.cpus", l.cpuset_cpus);
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
  host.v1_cpuset = IsDir(root + "/cpuset");
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
    for (const auto& c : V1Controllers(host)) g.dirs_.push_back(host.root + "/" + c + parent + "/" + name);
  }
  return g;
}

Result<VmCgroup> VmCgroup::Create(const CgroupHost& host, const std::string& parent, const std::string& name,
                                  const CgroupLimits& limits) {
  NFC_RETURN_IF_ERROR(CheckParentAndName(parent, name));
  const bool pinned = !limits.cpuset_cpus.empty();
  if (pinned && host.version == CgroupVersion::kV1 && !host.v1_cpuset) {
    return Error::FailedPrecondition("reserved cores (cpuset " + limits.cpuset_cpus +
                                     ") need the cgroup v1 cpuset hierarchy, and " + host.root +
                                     "/cpuset is not mounted");
  }
  if (host.version == CgroupVersion::kV2) NFC_RETURN_IF_ERROR(EnableV2Controllers(host.root, parent, pinned));
  VmCgroup all = Existing(host, parent, name);
  VmCgroup g;
  for (const auto& dir : all.dirs_) {
    const std::string hierarchy = dir.substr(0, dir.size() - parent.size() - name.size() - 1);
    const std::string controller =
        host.version == CgroupVersion::kV2 ? "" : hierarchy.substr(hierarchy.rfind('/') + 1);
    if (controller == "cpuset" && !pinned) continue;
    g.dirs_.push_back(dir);
    Status made = controller == "cpuset" ? InheritV1Cpuset(hierarchy, parent + "/" + name)
                                         : fs::MakeDirs(dir.substr(0, dir.rfind('/')), 0755);
    if (made.ok() && controller != "cpuset" && ::mkdir(dir.c_str(), 0755) != 0)
      made = Error::Errno("create cgroup " + dir);
    if (made.ok()) made = ApplyLimits(host.version, dir, controller, limits);
    if (!made.ok()) {
      // Best effort: what this call made goes; the error reported is the one that stopped it.
      if (Status undone = g.Remove(); !undone.ok())
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
