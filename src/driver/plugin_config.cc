#include "driver/plugin_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <utility>

#include "driver/config_reader.h"

namespace nfc::driver {
namespace {

constexpr std::string_view kWhat = "plugin config";

// Reads `primary`, or the seed driver's spelling `alias`; both set to different values is an error.
Result<std::optional<std::string>> StringWithAlias(ConfigReader& r, std::string_view primary,
                                                   std::string_view alias) {
  NFC_ASSIGN_OR_RETURN(std::optional<std::string> a, r.String(primary));
  NFC_ASSIGN_OR_RETURN(std::optional<std::string> b, r.String(alias));
  if (a && b && *a != *b) {
    return Error::InvalidArgument(std::string(kWhat) + " sets both \"" + std::string(primary) + "\" = \"" +
                                  *a + "\" and its alias \"" + std::string(alias) + "\" = \"" + *b +
                                  "\"; set only \"" + std::string(primary) + "\"");
  }
  return a ? a : b;
}

// A duration option ("90s", "2m") from 1 s to 1 h; nullopt when unset.
Result<std::optional<std::chrono::milliseconds>> TimeoutOption(ConfigReader& r, std::string_view key) {
  NFC_ASSIGN_OR_RETURN(auto text, r.String(key));
  if (!text) return std::optional<std::chrono::milliseconds>();
  auto d = ParseDuration(*text);
  if (!d.ok()) return r.Invalid(key, CtyValue::String(*text), d.error().message());
  if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(1))
    return r.Invalid(key, CtyValue::String(*text), "expected from 1s to 1h");
  return std::optional<std::chrono::milliseconds>(*d);
}

// The `gc` block.
Result<PluginConfig::ImageGc> DecodeGc(ConfigReader& r) {
  PluginConfig::ImageGc gc;
  NFC_ASSIGN_OR_RETURN(const CtyValue* object, r.Block("gc"));
  if (object == nullptr) return gc;
  ConfigReader sub(*object, std::string(kWhat) + " block \"gc\":");
  NFC_ASSIGN_OR_RETURN(auto image, sub.Bool("image"));
  if (image) gc.image = *image;
  NFC_ASSIGN_OR_RETURN(auto delay, sub.String("image_delay"));
  if (delay) {
    auto d = ParseDuration(*delay);
    if (!d.ok()) return sub.Invalid("image_delay", CtyValue::String(*delay), d.error().message());
    if (*d > std::chrono::hours(24 * 30)) {
      return sub.Invalid("image_delay", CtyValue::String(*delay), "expected from 0s to 720h");
    }
    gc.image_delay = *d;
  }
  NFC_RETURN_IF_ERROR(sub.RejectUnknown());
  return gc;
}

// "a.b.c.d/len" or "a.b.c.d" (the form network::EgressGuard takes).
bool IsIpv4Cidr(const std::string& cidr) {
  auto slash = cidr.find('/');
  in_addr addr{};
  if (::inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &addr) != 1) return false;
  if (slash == std::string::npos) return true;
  std::string len = cidr.substr(slash + 1);
  return !len.empty() && len.size() <= 2 && len.find_first_not_of("0123456789") == std::string::npos &&
         std::stoi(len) <= 32;
}

// The `egress_guard` block, like `gc`.
Result<PluginConfig::EgressGuard> DecodeEgressGuard(ConfigReader& r) {
  PluginConfig::EgressGuard guard;
  NFC_ASSIGN_OR_RETURN(const CtyValue* object, r.Block("egress_guard"));
  if (object == nullptr) return guard;
  ConfigReader sub(*object, std::string(kWhat) + " block \"egress_guard\":");
  NFC_ASSIGN_OR_RETURN(auto enabled, sub.Bool("enabled"));
  if (enabled) guard.enabled = *enabled;
  NFC_ASSIGN_OR_RETURN(auto gateway, sub.Bool("gateway"));
  if (gateway) guard.gateway = *gateway;
  NFC_ASSIGN_OR_RETURN(auto cidrs, sub.StringList("cidrs"));
  if (cidrs) {
    for (const std::string& cidr : *cidrs) {
      if (!IsIpv4Cidr(cidr)) {
        return sub.Invalid("cidrs", CtyValue::String(cidr),
                           "expected an IPv4 CIDR such as \"169.254.0.0/16\"");
      }
    }
    guard.cidrs = *cidrs;
  }
  NFC_RETURN_IF_ERROR(sub.RejectUnknown());
  return guard;
}

// The `host_network` block, like `gc`.
Result<PluginConfig::HostNetwork> DecodeHostNetwork(ConfigReader& r) {
  PluginConfig::HostNetwork host;
  NFC_ASSIGN_OR_RETURN(const CtyValue* object, r.Block("host_network"));
  if (object == nullptr) return host;
  ConfigReader sub(*object, std::string(kWhat) + " block \"host_network\":");
  NFC_ASSIGN_OR_RETURN(auto enabled, sub.Bool("enabled"));
  if (enabled) host.enabled = *enabled;
  NFC_ASSIGN_OR_RETURN(auto cidr, sub.String("cidr"));
  if (cidr) {
    auto slash = cidr->find('/');
    if (slash == std::string::npos || !IsIpv4Cidr(*cidr) || std::stoi(cidr->substr(slash + 1)) > 30) {
      return sub.Invalid("cidr", CtyValue::String(*cidr),
                         "expected an IPv4 CIDR of at least a /30, such as \"10.229.0.0/16\"");
    }
    host.cidr = *cidr;
  }
  NFC_RETURN_IF_ERROR(sub.RejectUnknown());
  return host;
}

Status RequireAbsolute(const ConfigReader& r, std::string_view key, const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return r.Invalid(key, CtyValue::String(path), "expected an absolute path");
  }
  return Ok();
}

Status RequireProgram(const ConfigReader& r, std::string_view key, const std::string& path) {
  if (path.empty()) return r.Invalid(key, CtyValue::String(path), "expected a program path or name");
  if (path.find('/') != std::string::npos && path[0] != '/') {
    return r.Invalid(key, CtyValue::String(path),
                     "expected an absolute path or a bare program name (found in PATH)");
  }
  return Ok();
}

}  // namespace

std::string_view BackendName(Backend backend) {
  switch (backend) {
    case Backend::kAuto:
      return "auto";
    case Backend::kFirecracker:
      return "firecracker";
    case Backend::kQemu:
      return "qemu";
  }
  return "auto";
}

Result<Backend> ParseBackend(std::string_view name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "firecracker") return Backend::kFirecracker;
  if (name == "qemu") return Backend::kQemu;
  return Error::InvalidArgument("expected \"auto\", \"firecracker\" or \"qemu\"");
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  std::string s(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) i++;
  if (i == 0)
    return Error::InvalidArgument("expected a size such as \"20GiB\", \"512MB\" or a number of bytes");
  std::string number = s.substr(0, i);
  std::string unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  struct UnitScale {
    std::string_view name;
    double scale;
  };
  static constexpr UnitScale kUnits[] = {{"", 1},
                                         {"b", 1},
                                         {"kb", 1e3},
                                         {"mb", 1e6},
                                         {"gb", 1e9},
                                         {"tb", 1e12},
                                         {"k", 1024.0},
                                         {"m", 1048576.0},
                                         {"g", 1073741824.0},
                                         {"t", 1099511627776.0},
                                         {"kib", 1024.0},
                                         {"mib", 1048576.0},
                                         {"gib", 1073741824.0},
                                         {"tib", 1099511627776.0}};
  const UnitScale* found = nullptr;
  for (const UnitScale& u : kUnits) {
    if (u.name == unit) found = &u;
  }
  if (found == nullptr) {
    return Error::InvalidArgument("unknown unit \"" + std::string(s.substr(i)) +
                                  "\" (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)");
  }
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size())
    return Error::InvalidArgument("malformed number \"" + number + "\"");
  double bytes = std::floor(value * found->scale);
  if (!(bytes < 1.8e19)) return Error::InvalidArgument("too large");
  return static_cast<uint64_t>(bytes);
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
  if (text.empty()) return Error::InvalidArgument("empty duration");
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    std::string number(text.substr(start, i - start));
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    char* end = nullptr;
    double value = number.empty() ? 0 : std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size()) {
      return Error::InvalidArgument("malformed duration \"" + std::string(text) +
                                    "\" (write e.g. \"90s\" or \"5m\")");
    }
    const auto* found =
        std::find_if(std::begin(kUnits), std::end(kUnits), [&](const auto& u) { return u.first == unit; });
    if (found == std::end(kUnits)) {
      return Error::InvalidArgument("duration \"" + std::string(text) + "\" needs a unit: ms, s, m or h");
    }
    total += value * found->second;
  }
  if (!(total < 1e15)) return Error::InvalidArgument("duration \"" + std::string(text) + "\" is too long");
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

spec::Node PluginConfigSpec() {
  using namespace spec;
  // Aliased options have no schema default: the decoder must see whether the operator set them.
  return Object({
      {"firecracker_path", AttrWithDefault("firecracker_path", "string", StringLiteral("firecracker"))},
      {"jailer_path", AttrWithDefault("jailer_path", "string", StringLiteral("jailer"))},
      // No default: unset means "when installed", which an explicit true or false overrides.
      {"jailer", Attr("jailer", "bool")},
      {"qemu_path", AttrWithDefault("qemu_path", "string", StringLiteral("qemu-system-x86_64"))},
      {"kernel_path", Attr("kernel_path", "string")},
      {"vmlinux_path", Attr("vmlinux_path", "string")},
      {"initrd_path", AttrWithDefault("initrd_path", "string", StringLiteral(kDefaultInitrdPath))},
      {"data_dir", Attr("data_dir", "string")},
      {"rootfs_base_path", Attr("rootfs_base_path", "string")},
      {"backend", AttrWithDefault("backend", "string", StringLiteral("auto"))},
      // A string, so both "20GiB" and a plain number of bytes are accepted (HCL converts numbers to strings).
      {"image_cache_size",
       AttrWithDefault("image_cache_size", "string", StringLiteral(kDefaultImageCacheSize))},
      {"insecure_registries", AttrWithDefault("insecure_registries", "list(string)", EmptyListLiteral())},
      {"ca_file", Attr("ca_file", "string")},
      {"pull_activity_timeout",
       AttrWithDefault("pull_activity_timeout", "string", StringLiteral(kDefaultPullActivityTimeout))},
      {"boot_timeout", AttrWithDefault("boot_timeout", "string", StringLiteral(kDefaultBootTimeout))},
      {"sandbox", AttrWithDefault("sandbox", "bool", BoolLiteral(true))},
      {"vm_uids", AttrWithDefault("vm_uids", "string", StringLiteral("200000-265535"))},
      {"cgroup_parent", AttrWithDefault("cgroup_parent", "string", StringLiteral("/nomad-firecracker"))},
      {"containerd_socket", Attr("containerd_socket", "string")},
      {"gc", Block("gc", false,
                   Object({
                       {"image", AttrWithDefault("image", "bool", BoolLiteral(true))},
                       {"image_delay", AttrWithDefault("image_delay", "string", StringLiteral("3m"))},
                   }))},
      {"egress_guard", Block("egress_guard", false,
                             Object({
                                 {"enabled", AttrWithDefault("enabled", "bool", BoolLiteral(true))},
                                 {"cidrs", Attr("cidrs", "list(string)")},
                                 {"gateway", AttrWithDefault("gateway", "bool", BoolLiteral(true))},
                             }))},
      {"sidecar_bridge", AttrWithDefault("sidecar_bridge", "bool", BoolLiteral(true))},
      {"warm_start", AttrWithDefault("warm_start", "bool", BoolLiteral(true))},
      {"host_network", Block("host_network", false,
                             Object({
                                 {"enabled", AttrWithDefault("enabled", "bool", BoolLiteral(false))},
                                 {"cidr", AttrWithDefault("cidr", "string", StringLiteral("10.229.0.0/16"))},
                             }))},
  });
}

Result<PluginConfig> DecodePluginConfig(const CtyValue& value) {
  PluginConfig config;
  if (value.is_null()) return config;
  ConfigReader r(value, std::string(kWhat));
  NFC_RETURN_IF_ERROR(r.CheckObject());

  NFC_ASSIGN_OR_RETURN(auto firecracker, r.String("firecracker_path"));
  if (firecracker) config.firecracker_path = *firecracker;
  NFC_RETURN_IF_ERROR(RequireProgram(r, "firecracker_path", config.firecracker_path));
  NFC_ASSIGN_OR_RETURN(auto jailer, r.String("jailer_path"));
  if (jailer) config.jailer_path = *jailer;
  NFC_RETURN_IF_ERROR(RequireProgram(r, "jailer_path", config.jailer_path));
  NFC_ASSIGN_OR_RETURN(config.jailer, r.Bool("jailer"));
  NFC_ASSIGN_OR_RETURN(auto qemu, r.String("qemu_path"));
  if (qemu) config.qemu_path = *qemu;
  NFC_RETURN_IF_ERROR(RequireProgram(r, "qemu_path", config.qemu_path));

  NFC_ASSIGN_OR_RETURN(auto kernel, StringWithAlias(r, "kernel_path", "vmlinux_path"));
  if (kernel) config.kernel_path = *kernel;
  NFC_RETURN_IF_ERROR(RequireAbsolute(r, "kernel_path", config.kernel_path));
  NFC_ASSIGN_OR_RETURN(auto initrd, r.String("initrd_path"));
  if (initrd) config.initrd_path = *initrd;
  // An empty initrd_path is allowed: it means "boot without an initramfs" (a kernel with everything built
  // in).
  if (!config.initrd_path.empty()) NFC_RETURN_IF_ERROR(RequireAbsolute(r, "initrd_path", config.initrd_path));
  NFC_ASSIGN_OR_RETURN(auto data_dir, StringWithAlias(r, "data_dir", "rootfs_base_path"));
  if (data_dir) config.data_dir = *data_dir;
  NFC_RETURN_IF_ERROR(RequireAbsolute(r, "data_dir", config.data_dir));

  NFC_ASSIGN_OR_RETURN(auto backend, r.String("backend"));
  if (backend) {
    Result<Backend> parsed = ParseBackend(*backend);
    if (!parsed.ok()) return r.Invalid("backend", CtyValue::String(*backend), parsed.error().message());
    config.backend = *parsed;
  }

  NFC_ASSIGN_OR_RETURN(auto cache, r.String("image_cache_size"));
  if (cache) {
    Result<uint64_t> bytes = ParseByteSize(*cache);
    if (!bytes.ok()) return r.Invalid("image_cache_size", CtyValue::String(*cache), bytes.error().message());
    config.image_cache_bytes = *bytes;
  }

  NFC_ASSIGN_OR_RETURN(auto insecure, r.StringList("insecure_registries"));
  if (insecure) {
    for (const std::string& host : *insecure) {
      if (host.empty() || host.find('/') != std::string::npos) {
        return r.Invalid("insecure_registries", CtyValue::String(host),
                         "expected a registry host name with an optional port, e.g. \"registry.local:5000\"");
      }
    }
    config.insecure_registries = *insecure;
  }
  NFC_ASSIGN_OR_RETURN(auto ca_file, r.String("ca_file"));
  if (ca_file && !ca_file->empty()) {
    NFC_RETURN_IF_ERROR(RequireAbsolute(r, "ca_file", *ca_file));
    config.ca_file = *ca_file;
  }

  NFC_ASSIGN_OR_RETURN(auto activity, TimeoutOption(r, "pull_activity_timeout"));
  if (activity) config.pull_activity_timeout = std::chrono::ceil<std::chrono::seconds>(*activity);
  NFC_ASSIGN_OR_RETURN(auto boot, TimeoutOption(r, "boot_timeout"));
  if (boot) config.boot_timeout = *boot;

  NFC_ASSIGN_OR_RETURN(auto sandbox, r.Bool("sandbox"));
  if (sandbox) config.sandbox = *sandbox;
  NFC_ASSIGN_OR_RETURN(auto uids, r.String("vm_uids"));
  if (uids) {
    auto range = sandbox::UidRange::Parse(*uids);
    if (!range.ok()) return r.Invalid("vm_uids", CtyValue::String(*uids), range.error().message());
    config.vm_uids = *range;
  }
  NFC_ASSIGN_OR_RETURN(auto cgroup_parent, r.String("cgroup_parent"));
  if (cgroup_parent) {
    const std::string& v = *cgroup_parent;
    if (v.size() < 2 || v[0] != '/' || v.back() == '/' || v.find("..") != std::string::npos ||
        v.find("//") != std::string::npos) {
      return r.Invalid(
          "cgroup_parent", CtyValue::String(v),
          "expected an absolute cgroup path such as \"/nomad-firecracker\" (not the root, no \"..\")");
    }
    config.cgroup_parent = v;
  }

  NFC_ASSIGN_OR_RETURN(config.gc, DecodeGc(r));
  NFC_ASSIGN_OR_RETURN(config.egress_guard, DecodeEgressGuard(r));
  NFC_ASSIGN_OR_RETURN(config.host_network, DecodeHostNetwork(r));
  NFC_ASSIGN_OR_RETURN(auto sidecar_bridge, r.Bool("sidecar_bridge"));
  if (sidecar_bridge) config.sidecar_bridge = *sidecar_bridge;
  NFC_ASSIGN_OR_RETURN(auto warm_start, r.Bool("warm_start"));
  if (warm_start) config.warm_start = *warm_start;
  NFC_ASSIGN_OR_RETURN(auto containerd, r.String("containerd_socket"));
  if (containerd) {
    config.warnings.push_back("plugin config option \"containerd_socket\" = \"" + *containerd +
                              "\" is ignored: this driver pulls images itself and does not use containerd");
  }
  NFC_RETURN_IF_ERROR(r.RejectUnknown());
  return config;
}

Result<PluginConfig> DecodePluginConfigMsgpack(std::string_view msgpack) {
  if (msgpack.empty()) return PluginConfig{};
  Result<CtyValue> value = DecodeCtyMsgpack(msgpack);
  if (!value.ok()) return std::move(value).error().Context(kWhat);
  return DecodePluginConfig(*value);
}

}  // namespace nfc::driver
