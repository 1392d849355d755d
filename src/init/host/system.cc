#include "init/host/system.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "base/fs.h"
#include "base/log.h"
#include "base/unique_fd.h"

namespace nfc::init::host {

const std::vector<std::pair<std::string, std::string>>& NomadHostSysctls() {
  static const std::vector<std::pair<std::string, std::string>> kSettings = {
      // Nomad bridge networking and port mapping (CNI bridge + portmap plugins, iptables on bridged traffic).
      {"net.ipv4.ip_forward", "1"},
      {"net.ipv6.conf.all.forwarding", "1"},
      {"net.bridge.bridge-nf-call-iptables", "1"},
      {"net.bridge.bridge-nf-call-ip6tables", "1"},
      {"net.ipv4.conf.all.route_localnet", "1"},  // Nomad's port mapping to 127.0.0.1
      // Many tasks, many microVMs: fds, inotify (Consul templates), conntrack, listen backlog, map count.
      {"fs.inotify.max_user_instances", "8192"},
      {"fs.inotify.max_user_watches", "524288"},
      {"fs.file-max", "4194304"},
      {"net.core.somaxconn", "4096"},
      {"net.netfilter.nf_conntrack_max", "262144"},
      {"vm.max_map_count", "262144"},
      // A wedged host helps nobody: reboot 10 s after a panic, and treat an oops as one.
      {"kernel.panic", "10"},
      {"kernel.panic_on_oops", "1"},
      // Hardening for a host that runs other people's workloads (Firecracker's production host guidance).
      {"kernel.unprivileged_bpf_disabled", "1"},
      {"kernel.kptr_restrict", "1"},
      {"kernel.dmesg_restrict", "1"},
      {"net.ipv4.conf.all.accept_redirects", "0"},
      {"net.ipv4.conf.default.accept_redirects", "0"},
  };
  return kSettings;
}

int ApplySysctls(const std::vector<std::pair<std::string, std::string>>& settings,
                 const std::string& proc_sys) {
  int applied = 0;
  for (const auto& [key, value] : settings) {
    std::string path = proc_sys + "/" + key;
    std::replace(path.begin() + static_cast<long>(proc_sys.size()), path.end(), '.', '/');
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), value.data(), value.size()) < 0) {
      log::Debug("sysctl not applied", {{"key", key}, {"errno", errno}});
      continue;
    }
    applied++;
  }
  return applied;
}

std::string DefaultHostname(const unsigned char mac[6]) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "nomados-%02x%02x%02x", mac[3], mac[4], mac[5]);
  return buf;
}

Status SetHostname(const std::string& name) {
  if (::sethostname(name.data(), name.size()) != 0) return Error::Errno("sethostname " + name);
  std::string hosts =
      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + name + "\n";
  return fs::WriteFileDurably("/run/nomados/hosts", hosts);
}

Status WriteResolvConf(const std::vector<std::string>& nameservers, const std::string& search,
                       const std::string& path) {
  std::string s = "# written by nomad-init\n";
  if (!search.empty()) s += "search " + search + "\n";
  for (const auto& ns : nameservers) s += "nameserver " + ns + "\n";
  return fs::WriteFileDurably(path, s);
}

Result<std::string> EnsureMachineId(const std::string& path) {
  if (auto existing = fs::ReadFile(path, 4096); existing.ok()) {
    std::string id = existing->substr(0, existing->find('\n'));
    if (id.size() == 32) return id;
  }
  unsigned char raw[16];
  if (getrandom(raw, sizeof raw, 0) != sizeof raw) return Error::Errno("getrandom for machine-id");
  raw[6] = (raw[6] & 0x0f) | 0x40;  // a version 4 UUID, as systemd's machine-id(5) asks
  raw[8] = (raw[8] & 0x3f) | 0x80;
  char hex[33];
  for (size_t i = 0; i < sizeof raw; i++) std::snprintf(hex + 2 * i, 3, "%02x", raw[i]);
  NFC_RETURN_IF_ERROR(fs::WriteFileDurably(path, std::string(hex) + "\n", 0444));
  return std::string(hex);
}

bool RaiseClockToBuildTime(const std::string& epoch_file) {
  auto text = fs::ReadFile(epoch_file, 64);
  if (!text.ok()) return false;
  long long epoch = 0;
  auto [end, err] = std::from_chars(text->data(), text->data() + text->size(), epoch);
  if (err != std::errc() || end == text->data() || epoch <= 0) return false;
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (now.tv_sec >= epoch) return false;
  timespec t{static_cast<time_t>(epoch), 0};
  if (clock_settime(CLOCK_REALTIME, &t) != 0) return false;
  return true;
}

void RaiseResourceLimits() {
  // Nomad and the processes it starts inherit these (Nomad's own docs ask for a large NOFILE on clients).
  rlimit nofile{1048576, 1048576};
  if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) log::Debug("RLIMIT_NOFILE not raised", {{"errno", errno}});
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_NPROC, &unlimited);
  setrlimit(RLIMIT_MEMLOCK, &unlimited);  // VMMs and io_uring want locked memory
}

}  // namespace nfc::init::host
