#include "driver/host_check.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/unique_fd.h"
#include "driver/host_probe.h"
#include "driver/kvm_probe.h"
#include "sandbox/cgroup.h"

namespace nfc::driver {
namespace {

using V = HostCheck::Verdict;

// Firecracker versions our backend is tested against (the specs in shared/specs: 1.7.0, 1.10.1, 1.16.1).
constexpr int kOldestMinor = 7, kNewestMinor = 16;
constexpr uint64_t kLowSpaceBytes = 2ULL << 30;  // less than this free in the data dir is a warning

HostCheck Make(std::string name, V verdict, std::string detail, std::string fix = {}) {
  return {std::move(name), verdict, std::move(detail), std::move(fix)};
}

bool UsesFirecracker(const PluginConfig& c) {
  return c.backend != Backend::kQemu;
}

HostCheck CheckKvm(const PluginConfig& config) {
  KvmGuestProbe kvm = ProbeKvmGuest(KvmDevicePath());
  // Without KVM the QEMU backend still works (TCG, slower); Firecracker cannot start at all.
  const V missing = config.backend == Backend::kFirecracker ? V::kFail : V::kWarn;
  switch (kvm.result) {
    case KvmGuestProbe::Result::kUsable:
      return Make("kvm", V::kOk, kvm.detail);
    case KvmGuestProbe::Result::kAbsent:
      return Make(
          "kvm", missing, "absent: " + kvm.detail,
          "load kvm_intel or kvm_amd (and enable virtualization for this machine); until then only the "
          "qemu backend runs, under TCG");
    case KvmGuestProbe::Result::kNoAccess:
      return Make("kvm", missing, "present but not accessible: " + kvm.detail,
                  "run the plugin as root or give its user read/write access to /dev/kvm (group kvm)");
    case KvmGuestProbe::Result::kUnusable:
      break;
  }
  return Make("kvm", missing, "present but unusable: " + kvm.detail,
              "KVM opens but cannot run guests (often nested or paravirtual KVM without VMX/SVM); use "
              "backend = \"qemu\", which falls back to TCG");
}

std::pair<int, int> MajorMinor(const std::string& version) {
  int major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2) return {0, 0};
  return {major, minor};
}

HostCheck CheckFirecracker(const PluginConfig& config, ProgramProbe* fc) {
  if (!UsesFirecracker(config)) return Make("firecracker", V::kOk, "not used (backend = \"qemu\")");
  *fc = ProbeProgram(config.firecracker_path);
  const V missing = config.backend == Backend::kFirecracker ? V::kFail : V::kWarn;
  if (!fc->problem.empty())
    return Make("firecracker", missing, fc->problem, "install Firecracker or set firecracker_path");
  auto [major, minor] = MajorMinor(fc->version);
  std::string detail = fc->path + " " + fc->version;
  if (major != 1 || minor < kOldestMinor) {
    return Make("firecracker", missing, detail + ": older than 1." + std::to_string(kOldestMinor),
                "install Firecracker 1." + std::to_string(kOldestMinor) + " or later");
  }
  if (minor > kNewestMinor) {
    return Make("firecracker", V::kWarn,
                detail + ": newer than the newest version tested (1." + std::to_string(kNewestMinor) + ")",
                "it will most likely work; report what does not");
  }
  if (minor < 8) detail += " (needs the tuned guest kernel: virtio devices on the kernel command line)";
  return Make("firecracker", V::kOk, detail);
}

HostCheck CheckJailer(const PluginConfig& config, const ProgramProbe& fc) {
  if (!UsesFirecracker(config) || config.jailer == false) {
    return Make("jailer", V::kOk, config.jailer == false ? "not used (jailer = false)" : "not used");
  }
  ProgramProbe jailer = ProbeProgram(config.jailer_path);
  const V missing = config.jailer == true ? V::kFail : V::kWarn;
  if (!jailer.problem.empty()) {
    return Make("jailer", missing, jailer.problem + ": Firecracker would run unconfined",
                "install the jailer of the same Firecracker release, or set jailer_path");
  }
  std::string detail = jailer.path + " " + jailer.version;
  if (!fc.version.empty() && jailer.version != fc.version) {
    return Make("jailer", V::kFail, detail + ", but firecracker is " + fc.version,
                "install the jailer and firecracker of one release");
  }
  return Make("jailer", V::kOk, detail);
}

HostCheck CheckQemu(const PluginConfig& config) {
  ProgramProbe qemu = ProbeProgram(config.qemu_path);
  if (config.backend == Backend::kFirecracker) {
    return Make("qemu", V::kOk, qemu.problem.empty() ? "not used (backend = \"firecracker\")" : "not used");
  }
  if (!qemu.problem.empty()) {
    return Make("qemu", config.backend == Backend::kQemu ? V::kFail : V::kWarn, qemu.problem,
                "apt install qemu-system-x86, or set qemu_path");
  }
  return Make("qemu", V::kOk, qemu.path + " " + qemu.version);
}

// The first bytes of a file, for its magic.
std::string Head(const std::string& path, size_t n) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out(n, '\0');
  ssize_t got = fd ? ::pread(fd.get(), out.data(), n, 0) : -1;
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

HostCheck CheckKernel(const PluginConfig& config) {
  if (Status s = CheckReadableFile(config.kernel_path); !s.ok()) {
    return Make("guest-kernel", V::kFail, s.error().message(),
                "build it with scripts/guest-kernel (or install the package), or set kernel_path");
  }
  const std::string head = Head(config.kernel_path, 0x206);
  const bool elf = head.rfind(
                       "\x7f"
                       "ELF",
                       0) == 0;
  const bool bzimage = head.size() >= 0x206 && head.compare(0x202, 4, "HdrS") == 0;
  if (!elf && !bzimage) {
    return Make("guest-kernel", V::kFail, config.kernel_path + " is neither an ELF vmlinux nor a bzImage",
                "point kernel_path at an uncompressed vmlinux (Firecracker) or a bzImage (QEMU)");
  }
  if (bzimage && UsesFirecracker(config)) {
    return Make("guest-kernel", config.backend == Backend::kFirecracker ? V::kFail : V::kWarn,
                config.kernel_path + " is a bzImage, which Firecracker cannot boot on x86",
                "use the vmlinux that scripts/guest-kernel writes");
  }
  return Make("guest-kernel", V::kOk, config.kernel_path + (elf ? " (ELF vmlinux)" : " (bzImage)"));
}

HostCheck CheckInitramfs(const PluginConfig& config) {
  if (config.initrd_path.empty())
    return Make("guest-initramfs", V::kOk, "none configured (initrd_path = \"\")");
  if (Status s = CheckReadableFile(config.initrd_path); !s.ok()) {
    return Make("guest-initramfs", V::kFail, s.error().message(),
                "build it with scripts/guest-kernel (it carries nomad-init), or set initrd_path");
  }
  const std::string head = Head(config.initrd_path, 6);
  const bool known = head.rfind("\x1f\x8b", 0) == 0 || head.rfind("\x28\xb5\x2f\xfd", 0) == 0 ||
                     head.rfind("\x02\x21\x4c\x18", 0) == 0 || head.rfind("070701", 0) == 0;
  if (!known) {
    return Make("guest-initramfs", V::kFail,
                config.initrd_path + " is not a cpio archive (plain, gzip, zstd or lz4)",
                "point initrd_path at the initramfs scripts/guest-kernel writes");
  }
  return Make("guest-initramfs", V::kOk, config.initrd_path);
}

HostCheck CheckCgroups(const PluginConfig& config) {
  auto host = sandbox::CgroupHost::Detect();
  if (!host.ok()) {
    return Make("cgroups", config.sandbox ? V::kFail : V::kWarn, host.error().message(),
                "mount cgroup v2 at /sys/fs/cgroup, or the v1 memory, cpu and pids controllers");
  }
  const std::string version = host->version == sandbox::CgroupVersion::kV2 ? "v2" : "v1";
  sandbox::CgroupLimits limits = sandbox::LimitsForVm(128, 1, 100);
  const std::string name = "doctor-" + std::to_string(::getpid());
  auto cg = sandbox::VmCgroup::Create(*host, config.cgroup_parent, name, limits);
  if (!cg.ok()) {
    return Make(
        "cgroups", config.sandbox ? V::kFail : V::kWarn,
        "cgroup " + version + ": cannot make " + config.cgroup_parent + "/" + name +
            " with memory, cpu and pids limits: " + cg.error().message(),
        "run the plugin as root, or delegate cgroup_parent (" + config.cgroup_parent + ") to its user");
  }
  Status removed = cg->Remove();
  if (!removed.ok()) {
    return Make("cgroups", V::kWarn,
                "cgroup " + version + " works, but the probe cgroup stayed: " + removed.error().message(),
                "remove it by hand");
  }
  return Make("cgroups", V::kOk,
              "cgroup " + version + ": memory, cpu and pids limits set under " + config.cgroup_parent);
}

// `resources { cores }` pins the VMM with a cpuset cgroup: a probe cgroup pinned to a CPU this process may
// use shows it works (v1: the cpuset hierarchy with cpus/mems inherited down; v2: the cpuset controller).
HostCheck CheckCpuset(const PluginConfig& config) {
  auto host = sandbox::CgroupHost::Detect();
  if (!host.ok()) return Make("cpuset", V::kWarn, "no usable cgroups (see the cgroups line)", "");
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    return Make("cpuset", V::kWarn, std::string("sched_getaffinity: ") + std::strerror(errno), "");
  }
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &allowed)) ++cpu;
  sandbox::CgroupLimits limits;
  limits.cpuset_cpus = std::to_string(cpu);
  const std::string name = "doctor-cpuset-" + std::to_string(::getpid());
  auto cg = sandbox::VmCgroup::Create(*host, config.cgroup_parent, name, limits);
  if (!cg.ok()) {
    return Make("cpuset", V::kWarn,
                "tasks with reserved cores (resources { cores }) cannot be pinned: " + cg.error().message(),
                host->version == sandbox::CgroupVersion::kV2
                    ? "make the cpuset controller available in /sys/fs/cgroup/cgroup.controllers"
                    : "mount the cgroup v1 cpuset controller at /sys/fs/cgroup/cpuset");
  }
  Status removed = cg->Remove();
  if (!removed.ok()) {
    return Make("cpuset", V::kWarn,
                "pinning works, but the probe cgroup stayed: " + removed.error().message(),
                "remove it by hand");
  }
  return Make("cpuset", V::kOk,
              "reserved cores are pinned with cpuset.cpus under " + config.cgroup_parent +
                  " (probed on CPU " + std::to_string(cpu) + ")");
}

HostCheck CheckDevice(const std::string& name, const std::string& path, V missing, const std::string& why,
                      const std::string& fix) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd) return Make(name, V::kOk, path + " opens");
  return Make(name, missing, path + ": " + std::strerror(errno) + why, fix);
}

HostCheck CheckDataDir(const PluginConfig& config) {
  const std::string& dir = config.data_dir;
  if (Status made = fs::MakeDirs(dir, 0700); !made.ok()) {
    return Make("data-dir", V::kFail, made.error().message(), "create " + dir + " or set data_dir");
  }
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) {
    return Make("data-dir", V::kFail, dir + ": statvfs: " + std::strerror(errno), "check " + dir);
  }
  const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  const std::string space = std::to_string(free_bytes >> 20) + " MiB free";
  // The jailer puts the kernel, drives and logs into its chroot as hard links: they must work here.
  const std::string a = dir + "/.doctor-" + std::to_string(::getpid()), b = a + ".link";
  UniqueFd fd(::open(a.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd)
    return Make("data-dir", V::kFail, dir + ": cannot create a file: " + std::strerror(errno),
                "make " + dir + " writable");
  const bool linked = ::link(a.c_str(), b.c_str()) == 0;
  const int link_errno = errno;
  ::unlink(b.c_str());
  ::unlink(a.c_str());
  if (!linked) {
    return Make("data-dir", UsesFirecracker(config) ? V::kWarn : V::kOk,
                dir + ", " + space + "; hard links fail (" + std::strerror(link_errno) + ")",
                "put data_dir on a filesystem with hard links (the jailer copies instead, slowly)");
  }
  if (free_bytes < kLowSpaceBytes) {
    return Make("data-dir", V::kWarn, dir + ", " + space, "free space for images and scratch disks");
  }
  return Make("data-dir", V::kOk, dir + ", " + space + ", hard links work");
}

HostCheck CheckPluginDir() {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return Make("plugin-dir", V::kWarn, "cannot tell where this binary is", "");
  const std::string exe(self, static_cast<size_t>(n));
  const std::string dir = exe.substr(0, exe.rfind('/'));
  return Make("plugin-dir", V::kOk,
              "this binary is " + exe + "; Nomad finds it when the agent's plugin_dir is " + dir);
}

}  // namespace

std::vector<HostCheck> CheckHost(const PluginConfig& config) {
  std::vector<HostCheck> out;
  out.push_back(CheckKvm(config));
  ProgramProbe fc;
  out.push_back(CheckFirecracker(config, &fc));
  out.push_back(CheckJailer(config, fc));
  out.push_back(CheckQemu(config));
  out.push_back(CheckKernel(config));
  out.push_back(CheckInitramfs(config));
  out.push_back(CheckCgroups(config));
  out.push_back(CheckCpuset(config));
  out.push_back(
      CheckDevice("tun", "/dev/net/tun", V::kFail, " (bridge networking needs TAP devices)", "modprobe tun"));
  out.push_back(CheckDevice("vhost-vsock", "/dev/vhost-vsock", V::kWarn,
                            " (QEMU then reaches the guest over virtio-serial; Firecracker does not need it)",
                            "modprobe vhost_vsock, for QEMU's vsock"));
  out.push_back(CheckDataDir(config));
  out.push_back(CheckPluginDir());
  return out;
}

std::string_view VerdictName(HostCheck::Verdict verdict) {
  switch (verdict) {
    case V::kOk:
      return "ok";
    case V::kWarn:
      return "warn";
    case V::kFail:
      return "FAIL";
  }
  return "?";
}

bool HostReady(const std::vector<HostCheck>& checks) {
  for (const auto& c : checks) {
    if (c.verdict == V::kFail) return false;
  }
  return true;
}

std::string HostChecksTable(const std::vector<HostCheck>& checks) {
  size_t width = 5;
  for (const auto& c : checks) width = std::max(width, c.name.size());
  auto pad = [](std::string s, size_t w) {
    s.resize(std::max(w, s.size()), ' ');
    return s;
  };
  std::string out = pad("CHECK", width) + "  VERDICT  DETAIL\n";
  for (const auto& c : checks) {
    out += pad(c.name, width) + "  " + pad(std::string(VerdictName(c.verdict)), 7) + "  " + c.detail + "\n";
    if (c.verdict != V::kOk && !c.fix.empty()) out += pad("", width) + "           fix: " + c.fix + "\n";
  }
  out += HostReady(checks) ? "ready: this host can run microVMs with this configuration\n"
                           : "not ready: fix the FAIL lines above\n";
  return out;
}

std::string HostChecksJson(const std::vector<HostCheck>& checks) {
  nlohmann::json j = {{"ok", HostReady(checks)}, {"checks", nlohmann::json::array()}};
  for (const auto& c : checks) {
    std::string verdict(VerdictName(c.verdict));
    for (char& ch : verdict) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    j["checks"].push_back({{"name", c.name}, {"verdict", verdict}, {"detail", c.detail}, {"fix", c.fix}});
  }
  return j.dump(2) + "\n";
}

}  // namespace nfc::driver
