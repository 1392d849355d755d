// CheckHost: can this host run microVMs with this plugin config, and if not, what to do about it. What
// `nomad-driver-firecracker doctor` prints, one line per check with a verdict and a fix.
//
// Every check looks at the real thing, not at a file's existence: KVM runs a probe guest (kvm_probe.h), the
// cgroup check creates and removes a cgroup with memory, CPU and pids limits under cgroup_parent, the data
// dir check makes a hard link there (the jailer's way of putting files in its chroot), the device checks
// open the devices. Each check is bounded in time.
#pragma once

#include <string>
#include <vector>

#include "driver/plugin_config.h"

namespace nfc::driver {

struct HostCheck {
  enum class Verdict { kOk, kWarn, kFail };
  std::string name;  // "kvm", "firecracker", "cgroups", ...
  Verdict verdict = Verdict::kOk;
  std::string detail;  // what was found
  std::string fix;     // what to do; empty when nothing needs doing
};

std::vector<HostCheck> CheckHost(const PluginConfig& config);

// "ok", "warn", "FAIL".
std::string_view VerdictName(HostCheck::Verdict verdict);
// A fixed-width table for people: CHECK, VERDICT, DETAIL, and the fix under a failing or warning line.
std::string HostChecksTable(const std::vector<HostCheck>& checks);
// {"ok": bool, "checks": [{"name", "verdict", "detail", "fix"}]}.
std::string HostChecksJson(const std::vector<HostCheck>& checks);
// True when no check failed (warnings allowed).
bool HostReady(const std::vector<HostCheck>& checks);

}  // namespace nfc::driver
