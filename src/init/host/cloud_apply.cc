#include "init/host/cloud_apply.h"

#include "base/fs.h"
#include "base/log.h"
#include "init/host/metadata.h"

namespace nfc::init::host {

std::optional<CloudConfig> LoadConfigDrive(ModuleLoader* modules, const std::string& baked,
                                           const std::string& merged) {
  if (modules) {
    for (const char* m : {"vfat", "isofs", "nls_cp437", "nls_ascii", "nls_utf8"}) (void)modules->Load(m);
  }
  auto drive = ReadConfigDrive("/run/nomados/config-drive", baked, merged);
  if (!drive.ok()) {
    log::Error("config drive not read; using the baked configuration", {{"error", drive.error().message()}});
    return std::nullopt;
  }
  if (!*drive) log::Debug("no config drive (label cidata or config-2)");
  return std::move(drive).value();
}

std::optional<CloudConfig> LoadMetadata(const HostOptions& opts, const std::string& baked,
                                        const std::string& merged) {
  if (opts.metadata == "off") return std::nullopt;
  MetadataOptions mo;
  mo.flavour = opts.metadata;
  mo.baked_config = baked;
  mo.merged_config = merged;
  log::Info("asking the metadata service", {{"address", mo.target.address}, {"flavour", mo.flavour}});
  auto c = FetchMetadata(mo);
  if (!c.ok()) {
    // No service is normal off-cloud (bare metal, VMware): the baked configuration applies.
    log::Info("no usable metadata service; using the baked configuration", {{"reason", c.error().message()}});
    return std::nullopt;
  }
  return std::move(c).value();
}

HostOptions ApplyCloudConfig(const CloudConfig& c, const HostOptions& current, const std::string& what,
                             bool network_up) {
  for (const auto& p : c.problems) log::Error(what + " " + c.source + ": " + p.message());
  auto kernel = fs::ReadFile("/proc/cmdline", 64 << 10);
  auto merged = MergeCloudOptions(SplitCmdline(kernel.ok() ? *kernel : ""), current, c);
  for (const auto& p : merged.problems)
    log::Error(what + " " + c.source + ": nomados.cmdline: " + p.message());
  HostOptions out = std::move(merged.options);
  if (network_up) {
    bool changed = out.interface != current.interface ||
                   out.static_ip.has_value() != current.static_ip.has_value() ||
                   (out.static_ip && out.static_ip->address != current.static_ip->address);
    if (changed) {
      log::Error(what + " " + c.source +
                 ": nomados.cmdline: ip= and nomados.iface= are ignored here: the network is already "
                 "configured (that is how the service was reached); use a config drive or the kernel command "
                 "line");
    }
    out.interface = current.interface;
    out.static_ip = current.static_ip;
  }
  log::Info(what + " applied", {{"source", c.source},
                                {"label", c.label},
                                {"instance_id", c.meta.instance_id},
                                {"hostname", out.hostname},
                                {"agent_files", static_cast<int>(c.agent_files.size())},
                                {"cmdline_words", static_cast<int>(c.cmdline_words.size())}});
  return out;
}

}  // namespace nfc::init::host
