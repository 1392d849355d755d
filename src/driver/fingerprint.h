// Fingerprint: what this node can run, as Nomad node attributes plus a health verdict (reference 5.13).
//
// HEALTHY only when the selected backend is usable (Firecracker: binary found and /dev/kvm opens read-write;
// QEMU: binary found, runs with or without KVM) and the guest kernel (and initramfs, if configured) exist.
// Otherwise UNHEALTHY, with a description that says what to install or which option to set. Attributes are
// named driver.<name>.<attr> so jobs can constrain on them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>

#include "driver/plugin_config.h"

namespace nfc::driver {

using AttributeValue = std::variant<std::string, int64_t, bool, double>;

struct FingerprintResult {
  enum class Health { kUndetected, kUnhealthy, kHealthy };
  Health health = Health::kUndetected;
  std::string description;
  std::map<std::string, AttributeValue> attributes;

  bool operator==(const FingerprintResult&) const = default;
};

// Probes the host for `config`. `plugin_version` is reported as driver.<name>.version.
FingerprintResult ProbeFingerprint(const PluginConfig& config, const std::string& driver_name,
                                   const std::string& plugin_version);

}  // namespace nfc::driver
