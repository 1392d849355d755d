// The host role's configuration: what the kernel command line says, with the defaults NomadOS images use.
//
// NomadOS has no config files an operator edits on the machine; everything per-boot comes from the command
// line that the boot loader passes (syslinux.cfg / the systemd-boot entry on the boot partition, or the
// cloud's serial/kernel argument override). Keys are `nomados.<name>=<value>` plus the de-facto standard
// `ip=` (the kernel's nfsroot / dracut syntax) for static addressing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "init/host/slots.h"

namespace nfc::init::host {

// Splits a command line into words, honouring double quotes the way the kernel does (`a="b c"` is one word).
std::vector<std::string> SplitCmdline(std::string_view cmdline);

// Static IPv4 settings from
// `ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>`.
struct StaticIp {
  std::string address;  // dotted quad
  int prefix_len = 24;
  std::string gateway;  // may be empty
  std::string hostname;
  std::string device;  // may be empty: first ethernet interface
  std::vector<std::string> dns;
};

struct HostOptions {
  std::string system_partition = "nomados-system";  // GPT partition name of the read-only root
  std::string data_partition = "nomados-data";      // GPT partition name of the writable data partition
  std::string hostname;                             // empty: from DHCP, else nomados-<mac suffix>
  std::string interface;                            // empty: first ethernet interface found
  std::optional<StaticIp> static_ip;                // nullopt: DHCP
  bool debug_shell = false;                         // nomados.debug=shell: /bin/sh on the console, if present
  std::chrono::seconds stop_timeout{60};            // how long the agent may drain after SIGTERM
  std::chrono::seconds network_timeout{60};         // start the agent without network after this long
  std::chrono::seconds root_timeout{30};            // wait this long for the system partition to appear
  std::string log_level = "info";
  std::vector<std::string> extra_modules;  // nomados.modules=a,b: loaded in addition to coldplug
  std::string metadata = "auto";           // nomados.metadata=auto|ec2|openstack|off (metadata.h)
  // A/B slots (slots.h): nomados.slot=a|b names the booted slot (and, unless nomados.system= says otherwise,
  // the system partition nomados-system-<slot>); nomados.trial=1 marks an update's one trial boot.
  std::optional<Slot> slot;
  bool trial = false;
  std::chrono::seconds trial_timeout{300};  // nomados.trial_timeout: the agent must be healthy by then
  std::chrono::seconds trial_healthy{30};   // nomados.trial_healthy: healthy = running this long unbroken
  bool grow_data = true;                    // nomados.grow_data=0: keep the data partition's size
};

// Parses the words of /proc/cmdline. Other words belong to the kernel or other programs and are ignored. A
// bad `nomados.*` word (unknown key: a typo must not silently do nothing; unparsable value) is reported in
// `problems` and the default kept: PID 1 must come up and say what was wrong rather than refuse to boot.
struct ParsedHostOptions {
  HostOptions options;
  std::vector<Error> problems;
};
ParsedHostOptions ParseHostOptions(const std::vector<std::string>& words);

Result<StaticIp> ParseIpParameter(std::string_view value);

}  // namespace nfc::init::host
