// Machine identity and kernel settings of a NomadOS host: hostname, /etc/hosts and resolv.conf (generated
// under /run/nomados, where the read-only /etc links point), machine-id (persisted on the data partition), a
// sane clock, rlimits and the sysctls a Nomad client running microVMs needs.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace nfc::init::host {

// sysctl key (dotted) -> value. Missing keys (module not loaded, feature absent) are skipped with a debug
// log.
const std::vector<std::pair<std::string, std::string>>& NomadHostSysctls();
// Writes each setting to /proc/sys; returns how many were applied.
int ApplySysctls(const std::vector<std::pair<std::string, std::string>>& settings,
                 const std::string& proc_sys = "/proc/sys");

Status SetHostname(const std::string& name);  // also writes /run/nomados/hosts
std::string DefaultHostname(const unsigned char mac[6]);
Status WriteResolvConf(const std::vector<std::string>& nameservers, const std::string& search,
                       const std::string& path = "/run/nomados/resolv.conf");
// Reads or creates (from getrandom) the 128-bit machine id at path.
Result<std::string> EnsureMachineId(const std::string& path = "/var/lib/nomados/machine-id");
// If the clock says a time before the image was built (dead RTC battery, no RTC), move it to the build time
// so TLS certificate checks do not fail for decades; returns true if it changed the clock.
bool RaiseClockToBuildTime(const std::string& epoch_file = "/usr/lib/nomados/build-epoch");
void RaiseResourceLimits();

}  // namespace nfc::init::host
