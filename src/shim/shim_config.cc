#include "shim/shim_config.h"

#include <nlohmann/json.hpp>

namespace nfc::shim {
namespace {

constexpr std::pair<vmm::DriveLock, const char*> kDriveLocks[] = {{vmm::DriveLock::kNone, "none"},
                                                                  {vmm::DriveLock::kShared, "shared"},
                                                                  {vmm::DriveLock::kExclusive, "exclusive"}};

const char* DriveLockName(vmm::DriveLock lock) {
  for (const auto& [value, name] : kDriveLocks)
    if (value == lock) return name;
  return "none";
}

Result<vmm::DriveLock> ParseDriveLock(const std::string& text) {
  for (const auto& [value, name] : kDriveLocks)
    if (text == name) return value;
  return Error::InvalidArgument("drive lock \"" + text + "\" is not none, shared or exclusive");
}

}  // namespace

std::string ShimConfig::ToJson() const {
  nlohmann::json drives = nlohmann::json::array();
  for (const auto& d : vm.drives)
    drives.push_back(
        {{"id", d.id}, {"path", d.path}, {"read_only", d.read_only}, {"lock", DriveLockName(d.lock)}});
  nlohmann::json nics = nlohmann::json::array();
  for (const auto& n : vm.nics)
    nics.push_back({{"id", n.id}, {"tap", n.tap}, {"mac", n.mac}, {"mtu", n.mtu}});
  nlohmann::json vmj = {
      {"id", vm.id},
      {"state_dir", vm.state_dir},
      {"vmm_binary", vm.vmm_binary},
      {"kernel_path", vm.kernel_path},
      {"initrd_path", vm.initrd_path},
      {"kernel_args", vm.kernel_args},
      {"replace_kernel_args", vm.replace_kernel_args},
      {"vcpus", vm.vcpus},
      {"memory_mib", vm.memory_mib},
      {"drives", drives},
      {"nics", nics},
      {"console_mode", vm.console.mode == vmm::ConsoleConfig::Mode::kFile ? "file" : "off"},
      {"console_path", vm.console.path},
      {"console_max_bytes", vm.console.max_bytes},
      {"vmm_log_path", vm.vmm_log_path},
      {"metrics_path", vm.metrics_path},
      {"allow_kvm", vm.allow_kvm},
  };
  if (vm.kvm_usable) vmj["kvm_usable"] = *vm.kvm_usable;
  if (vm.sandbox) {
    vmj["sandbox"] = {{"uid", vm.sandbox->uid},
                      {"gid", vm.sandbox->gid},
                      {"jail_dir", vm.sandbox->jail_dir},
                      {"cgroup_procs", vm.sandbox->cgroup_procs}};
  }
  if (vm.jailer) {
    const vmm::JailerConfig& jc = *vm.jailer;
    vmj["jailer"] = {{"binary", jc.binary},
                     {"chroot_base", jc.chroot_base},
                     {"uid", jc.uid},
                     {"gid", jc.gid},
                     {"netns_path", jc.netns_path},
                     {"parent_cgroup", jc.parent_cgroup},
                     {"memory_bytes", jc.limits.memory_bytes},
                     {"cpu_shares", jc.limits.cpu_shares},
                     {"pids_max", jc.limits.pids_max},
                     {"cpu_quota_us", jc.limits.cpu_quota_us},
                     {"cpu_period_us", jc.limits.cpu_period_us},
                     {"cpuset_cpus", jc.limits.cpuset_cpus},
                     {"memory_soft_bytes", jc.limits.memory_soft_bytes},
                     {"open_files", jc.open_files}};
  }
  if (vm.guest_channel) {
    vmj["guest_channel"] = {{"socket_path", vm.guest_channel->socket_path},
                            {"guest_cid", vm.guest_channel->guest_cid},
                            {"port", vm.guest_channel->port},
                            {"serial_port_name", vm.guest_channel->serial_port_name}};
  }
  nlohmann::json j = {
      {"version", kShimConfigVersion},
      {"task_id", task_id},
      {"task_dir", task_dir},
      {"backend", std::string(vmm::BackendName(backend))},
      {"vm", vmj},
      {"stdout_path", stdout_path},
      {"stderr_path", stderr_path},
      {"guest_port", guest_port},
      {"boot_timeout_millis", boot_timeout_millis},
      {"final_log_flush_millis", final_log_flush_millis},
      {"log_level", log_level},
      {"files_max_bytes", files_max_bytes},
  };
  j["file_roots"] = nlohmann::json::array();
  for (const auto& r : file_roots)
    j["file_roots"].push_back(
        {{"name", r.name}, {"path", r.path}, {"two_way", r.two_way}, {"exclude", r.exclude}});
  for (const auto& f : relays) {
    j["relays"].push_back(
        {{"listen", f.listen.ToString()}, {"target", f.target.ToString()}, {"tcp", f.tcp}, {"udp", f.udp}});
  }
  if (warm_start) {
    j["warm_start"] = {{"state_path", warm_start->snapshot.state_path},
                       {"memory_path", warm_start->snapshot.memory_path},
                       {"initrd_path", warm_start->initrd_path},
                       {"template_key", warm_start->template_key},
                       {"spec_json", warm_start->spec_json},
                       {"nic_macs", warm_start->nic_macs}};
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<ShimConfig> ShimConfig::FromJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::InvalidArgument("shim config is not a JSON object");
  if (j.value("version", 0) != kShimConfigVersion) {
    return Error::InvalidArgument("shim config: unsupported version (want " +
                                  std::to_string(kShimConfigVersion) + ")");
  }
  ShimConfig c;
  try {
    c.task_id = j.at("task_id").get<std::string>();
    c.task_dir = j.at("task_dir").get<std::string>();
    NFC_ASSIGN_OR_RETURN(c.backend, vmm::ParseBackend(j.at("backend").get<std::string>()));
    const auto& v = j.at("vm");
    c.vm.id = v.at("id").get<std::string>();
    c.vm.state_dir = v.at("state_dir").get<std::string>();
    c.vm.vmm_binary = v.value("vmm_binary", "");
    c.vm.kernel_path = v.at("kernel_path").get<std::string>();
    c.vm.initrd_path = v.value("initrd_path", "");
    c.vm.kernel_args = v.value("kernel_args", std::vector<std::string>{});
    c.vm.replace_kernel_args = v.value("replace_kernel_args", false);
    c.vm.vcpus = v.at("vcpus").get<uint32_t>();
    c.vm.memory_mib = v.at("memory_mib").get<uint32_t>();
    for (const auto& d : v.value("drives", nlohmann::json::array())) {
      NFC_ASSIGN_OR_RETURN(vmm::DriveLock lock, ParseDriveLock(d.value("lock", "none")));
      c.vm.drives.push_back({d.at("id").get<std::string>(), d.at("path").get<std::string>(),
                             d.value("read_only", false), lock});
    }
    for (const auto& n : v.value("nics", nlohmann::json::array())) {
      c.vm.nics.push_back({n.at("id").get<std::string>(), n.at("tap").get<std::string>(), n.value("mac", ""),
                           n.value("mtu", 0u)});
    }
    c.vm.console.mode = v.value("console_mode", "off") == "file" ? vmm::ConsoleConfig::Mode::kFile
                                                                 : vmm::ConsoleConfig::Mode::kOff;
    c.vm.console.path = v.value("console_path", "");
    c.vm.console.max_bytes = v.value("console_max_bytes", uint64_t{1} << 20);
    c.vm.vmm_log_path = v.value("vmm_log_path", "");
    c.vm.metrics_path = v.value("metrics_path", "");
    if (v.contains("sandbox")) {
      const auto& sb = v.at("sandbox");
      c.vm.sandbox = vmm::VmmSandbox{sb.at("uid").get<uint32_t>(), sb.at("gid").get<uint32_t>(),
                                     sb.at("jail_dir").get<std::string>(),
                                     sb.value("cgroup_procs", std::vector<std::string>{})};
    }
    if (v.contains("jailer")) {
      const auto& jj = v.at("jailer");
      vmm::JailerConfig jc;
      jc.binary = jj.at("binary").get<std::string>();
      jc.chroot_base = jj.at("chroot_base").get<std::string>();
      jc.uid = jj.at("uid").get<uint32_t>();
      jc.gid = jj.at("gid").get<uint32_t>();
      jc.netns_path = jj.value("netns_path", "");
      jc.parent_cgroup = jj.value("parent_cgroup", "");
      jc.limits = {jj.value("memory_bytes", uint64_t{0}),     jj.value("cpu_shares", uint64_t{0}),
                   jj.value("pids_max", uint64_t{0}),         jj.value("cpu_quota_us", uint64_t{0}),
                   jj.value("cpu_period_us", uint64_t{0}),    jj.value("cpuset_cpus", ""),
                   jj.value("memory_soft_bytes", uint64_t{0})};
      jc.open_files = jj.value("open_files", uint64_t{2048});
      c.vm.jailer = jc;
    }
    c.vm.allow_kvm = v.value("allow_kvm", true);
    if (v.contains("kvm_usable")) c.vm.kvm_usable = v.at("kvm_usable").get<bool>();
    if (v.contains("guest_channel")) {
      const auto& g = v.at("guest_channel");
      vmm::GuestChannelConfig gc;
      gc.socket_path = g.at("socket_path").get<std::string>();
      gc.guest_cid = g.value("guest_cid", 3u);
      gc.port = g.value("port", 1024u);
      gc.serial_port_name = g.value("serial_port_name", gc.serial_port_name);
      c.vm.guest_channel = gc;
    }
    c.stdout_path = j.at("stdout_path").get<std::string>();
    c.stderr_path = j.at("stderr_path").get<std::string>();
    c.guest_port = j.value("guest_port", 1024u);
    c.boot_timeout_millis = j.value("boot_timeout_millis", int64_t{180000});
    c.final_log_flush_millis = j.value("final_log_flush_millis", int64_t{10000});
    c.log_level = j.value("log_level", "info");
    c.files_max_bytes = j.value("files_max_bytes", c.files_max_bytes);
    for (const auto& r : j.value("file_roots", nlohmann::json::array())) {
      c.file_roots.push_back({r.at("name").get<std::string>(), r.at("path").get<std::string>(),
                              r.value("two_way", false), r.value("exclude", std::vector<std::string>{})});
    }
    for (const auto& f : j.value("relays", nlohmann::json::array())) {
      NFC_ASSIGN_OR_RETURN(network::Endpoint listen,
                           network::ParseEndpoint(f.at("listen").get<std::string>()));
      NFC_ASSIGN_OR_RETURN(network::Endpoint target,
                           network::ParseEndpoint(f.at("target").get<std::string>()));
      c.relays.push_back({listen, target, f.value("tcp", true), f.value("udp", true)});
    }
    if (j.contains("warm_start")) {
      const auto& w = j.at("warm_start");
      c.warm_start = WarmStart{{w.at("state_path").get<std::string>(), w.value("memory_path", "")},
                               w.at("initrd_path").get<std::string>(),
                               w.value("template_key", ""),
                               w.at("spec_json").get<std::string>(),
                               w.value("nic_macs", std::vector<std::string>{})};
    }
  } catch (const nlohmann::json::exception& e) {
    return Error::InvalidArgument(std::string("shim config: ") + e.what());
  }
  return c;
}

}  // namespace nfc::shim
