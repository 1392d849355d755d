// Applying configuration from the machine (a config drive, config_drive.h, or the metadata service,
// metadata.h) to the host role's options, with the console messages both produce. host_main.cc calls these
// at boot; kept apart so the steps there stay one line each.
#pragma once

#include <optional>
#include <string>

#include "init/common/modules.h"
#include "init/host/cmdline.h"
#include "init/host/config_drive.h"

namespace nfc::init::host {

// Looks for a cidata/config-2 drive (loading vfat/isofs first); nullopt when there is none or it could not
// be read (said on the console).
std::optional<CloudConfig> LoadConfigDrive(ModuleLoader* modules, const std::string& baked,
                                           const std::string& merged);

// Asks the metadata service the way opts.metadata says; nullopt when it is off, nothing answered, or the
// answer was unusable (said on the console). Blocks for at most ~5 s when nothing answers.
std::optional<CloudConfig> LoadMetadata(const HostOptions& opts, const std::string& baked,
                                        const std::string& merged);

// `current` with the source applied (MergeCloudOptions over /proc/cmdline's words), the source's problems
// logged as "<what> <source>: <problem>" and a "<what> applied" line. With `network_up` (the metadata service
// is reached over the configured network) the network options (ip=, nomados.iface=) are kept as they are and
// a change is reported.
HostOptions ApplyCloudConfig(const CloudConfig& c, const HostOptions& current, const std::string& what,
                             bool network_up);

}  // namespace nfc::init::host
