#include "task/plan.h"

#include <algorithm>

#include "guest/control_channel.h"
#include "task/env.h"
#include "task/signals.h"

namespace nfc::task {
namespace {

// The backend the task asks for (or the plugin's), "auto" settled by what is installed.
void PickBackend(const driver::PluginConfig& plugin, std::optional<driver::Backend> task_backend,
                 const StartHost& host, VmPlan& plan) {
  driver::Backend b = task_backend.value_or(plugin.backend);
  if (b == driver::Backend::kAuto) {
    // QEMU probes KVM itself and falls back to TCG, so it is the fallback wherever Firecracker is missing.
    b = host.firecracker_binary ? driver::Backend::kFirecracker : driver::Backend::kQemu;
  }
  if (b == driver::Backend::kFirecracker) {
    plan.backend = vmm::Backend::kFirecracker;
    plan.vmm_binary = host.firecracker_binary.value_or(plugin.firecracker_path);
  } else {
    plan.backend = vmm::Backend::kQemu;
    plan.vmm_binary = host.qemu_binary.value_or(plugin.qemu_path);
  }
}

// Firecracker's jailer when the plugin wants it: `jailer` unset uses it whenever it is installed.
Result<std::string> JailerFor(const driver::PluginConfig& plugin, const StartHost& host,
                              vmm::Backend backend) {
  if (backend != vmm::Backend::kFirecracker || plugin.jailer == false) return std::string();
  if (host.jailer_binary) return *host.jailer_binary;
  if (plugin.jailer == true) {
    return Error::FailedPrecondition(
        "plugin config jailer = true, but jailer_path \"" + plugin.jailer_path +
        "\" is not installed (set jailer = false to run Firecracker unconfined)");
  }
  return std::string();
}

SizingInput SizingFor(const driver::NomadTask& task, const driver::TaskConfig& config) {
  SizingInput in;
  in.vcpus_config = static_cast<int>(config.vcpu_count.value_or(0));
  in.memory_config_mib = config.mem_size_mib.value_or(0);
  in.cpu_shares_mhz = task.resources.cpu_shares;
  in.cpuset_cpus = task.resources.cpuset_cpus;
  in.memory_mb = task.resources.memory_mb;
  in.memory_max_mb = task.resources.memory_max_mb;
  return in;
}

Result<guest::ProcessOverrides> ProcessFor(const driver::NomadTask& task, const driver::TaskConfig& config) {
  guest::ProcessOverrides p;
  std::map<std::string, std::string> config_env;
  for (const auto& [k, v] : config.env) config_env[k] = v;  // later entries win
  NFC_ASSIGN_OR_RETURN(p.env, TaskEnvOverrides(config_env, task.env));
  p.entrypoint = config.entrypoint;
  if (config.command) {
    std::vector<std::string> args = {*config.command};
    if (config.args) args.insert(args.end(), config.args->begin(), config.args->end());
    p.args = std::move(args);
  } else if (config.args) {
    p.args = config.args;
  }
  p.working_dir = config.work_dir.value_or("");
  p.user = config.user.value_or(task.user);
  return p;
}

image::PullOptions PullFor(const driver::NomadTask& task, const driver::TaskConfig& config,
                           const driver::PluginConfig& plugin) {
  image::PullOptions pull;
  if (config.auth) pull.auth = image::RegistryAuth{config.auth->username, config.auth->password, ""};
  pull.auth_soft_fail = config.auth_soft_fail;
  pull.force_pull = config.force_pull;
  pull.insecure_registries = plugin.insecure_registries;
  pull.ca_file = plugin.ca_file;
  pull.lease_holder = task.id;
  pull.timeout = std::chrono::ceil<std::chrono::seconds>(
      config.image_pull_timeout.value_or(driver::kDefaultImagePullTimeout));
  pull.activity_timeout = plugin.pull_activity_timeout;
  return pull;
}

// Nomad's task directories (its allocdir layout) at the guest paths IMAGE isolation promises (NOMAD_TASK_DIR
// and friends). /alloc/logs holds Nomad's own log files, which grow with every line the task prints: not
// mirrored. Without an alloc dir (the CLI) there are none.
struct TaskDirectory {
  const char* name;
  std::string host_path;
  const char* guest_path;
  bool two_way;
  const char* tmpfs_size;
};

std::vector<TaskDirectory> TaskDirectoriesOf(const driver::NomadTask& task) {
  if (task.alloc_dir.empty() || task.name.empty()) return {};
  std::string own = task.alloc_dir + "/" + task.name;
  return {{"local", own + "/local", "/local", false, ""},
          {"secrets", own + "/secrets", "/secrets", false, kSecretsTmpfsSize},
          {"alloc", task.alloc_dir + "/alloc", "/alloc", true, ""}};
}

constexpr const char* kAllocExcluded = "logs";

// The root image is the first disk (vda) and the scratch disk the second (vdb); volumes follow.
constexpr size_t kFirstVolumeDisk = 2;

size_t Depth(const std::string& path) {
  return static_cast<size_t>(std::count(path.begin(), path.end(), '/'));
}

// Nomad's mounts and devices as volume requests, checked; mounts parent-first so that a volume inside another
// is mounted after it (the order Nomad sends is the job's, which need not be that).
Result<std::vector<volume::Request>> VolumesFor(const driver::NomadTask& task) {
  using Kind = volume::Request::Kind;
  std::vector<volume::Request> requests;
  for (size_t i = 0; i < task.mounts.size(); i++) {
    const auto& m = task.mounts[i];
    requests.push_back(
        {Kind::kMount, "mounts[" + std::to_string(i) + "]", m.host_path, m.task_path, m.readonly});
  }
  std::stable_sort(requests.begin(), requests.end(),
                   [](const auto& a, const auto& b) { return Depth(a.task_path) < Depth(b.task_path); });
  for (size_t i = 0; i < task.devices.size(); i++) {
    const auto& d = task.devices[i];
    bool writable = d.cgroup_permissions.empty() || d.cgroup_permissions.find('w') != std::string::npos;
    requests.push_back(
        {Kind::kDevice, "devices[" + std::to_string(i) + "]", d.host_path, d.task_path, !writable});
  }
  std::vector<std::string> reserved;
  for (const auto& d : TaskDirectoriesOf(task)) reserved.emplace_back(d.guest_path);
  NFC_RETURN_IF_ERROR(volume::CheckRequests(requests, reserved));
  return requests;
}

// The guest's side of the volumes: a mount (filesystem detected) or a device node per disk.
void AddVolumes(const VmPlan& vm, guest::TaskSpec& spec) {
  for (size_t i = 0; i < vm.volumes.size(); i++) {
    const auto& v = vm.volumes[i];
    std::string device = "/dev/" + volume::GuestDiskName(kFirstVolumeDisk + i);
    if (v.kind == volume::Request::Kind::kDevice) {
      spec.devices.push_back({device, v.task_path});
    } else {
      spec.mounts.push_back({device, v.task_path, "auto", {v.read_only ? "ro" : "rw"}});
    }
  }
}

// The host's side: the disks in the same order, locked by the VMM while it runs (volume.h).
void AddVolumeDrives(const VmPlan& vm, const Provisioned& p, vmm::VmConfig& config) {
  for (size_t i = 0; i < vm.volumes.size(); i++) {
    const auto& v = vm.volumes[i];
    vmm::DriveLock lock = vmm::DriveLock::kNone;
    if (v.kind == volume::Request::Kind::kMount)
      lock = v.read_only ? vmm::DriveLock::kShared : vmm::DriveLock::kExclusive;
    config.drives.push_back({vmm::VolumeDriveId(i), p.volumes[i].path, v.read_only, lock});
  }
}

guest::TaskSpec SpecFor(const VmPlan& vm, const driver::NomadTask& task, const Provisioned& p) {
  guest::TaskSpec spec;
  spec.task_id = task.alloc_id.empty() ? task.id : task.alloc_id + "/" + task.name;
  const image::ImageConfig& image = p.image.config;
  spec.image.entrypoint = image.entrypoint;
  spec.image.cmd = image.cmd;
  spec.image.env = image.env;
  spec.image.working_dir = image.working_dir;
  spec.image.user = image.user;
  spec.process = vm.process;
  // The image's STOPSIGNAL, when it names a signal; an unknown name keeps SIGTERM rather than failing a job
  // whose image Docker would run.
  if (!image.stop_signal.empty()) {
    if (auto sig = ParseSignal(image.stop_signal); sig.ok()) spec.process.stop_signal = *sig;
  }
  spec.hostname = vm.hostname;
  spec.dns = GuestDns(task, p.network, p.host_resolv_conf);
  if (!task.dns && vm.dns_override) {
    // The task config's dns_* replace what they name and keep the rest (the host's, in group mode); Nomad's
    // own `dns` block, when the job has one, wins over them, as with the docker driver.
    guest::DnsConfig dns = spec.dns.value_or(guest::DnsConfig{});
    if (!vm.dns_override->servers.empty()) dns.servers = vm.dns_override->servers;
    if (!vm.dns_override->searches.empty()) dns.searches = vm.dns_override->searches;
    if (!vm.dns_override->options.empty()) dns.options = vm.dns_override->options;
    spec.dns = std::move(dns);
  }
  spec.labels = vm.labels;
  spec.network = p.network.guest;
  spec.root.device = "/dev/vda";
  spec.scratch.device = "/dev/vdb";
  spec.control.serial_port = std::string(guest::kDefaultSerialPortName);
  for (const auto& d : TaskDirectoriesOf(task)) {
    guest::FileRootConfig root{d.name, d.guest_path, d.two_way, d.tmpfs_size, 0777, {}};
    if (d.two_way) root.exclude = {kAllocExcluded};
    spec.files.roots.push_back(root);
  }
  spec.files.max_bytes = vm.files_max_bytes;
  AddVolumes(vm, spec);
  return spec;
}

vmm::JailerConfig JailerConfigFor(const VmPlan& vm, const Provisioned& p) {
  vmm::JailerConfig jc;
  jc.binary = vm.jailer_binary;
  jc.chroot_base = shim::JailerBaseDir(shim::DataDirOf(p.dir));
  jc.uid = jc.gid = *p.vm_uid;
  jc.netns_path = p.network.netns_path;
  jc.parent_cgroup = vm.cgroup_parent.substr(1);  // the jailer's is relative to the cgroup root
  jc.limits = vm.cgroup_limits;
  return jc;
}

shim::ShimConfig ShimFor(const VmPlan& vm, const driver::NomadTask& task, const Provisioned& p) {
  shim::ShimConfig sc;
  sc.task_id = task.id;
  sc.task_dir = p.dir.root;
  sc.backend = vm.backend;
  sc.vm.id = p.vm_id;
  sc.vm.state_dir = p.dir.root;
  sc.vm.vmm_binary = vm.vmm_binary;
  sc.vm.kernel_path = vm.kernel_path;
  sc.vm.initrd_path = p.dir.Initramfs();
  sc.vm.kernel_args = vm.kernel_args;
  sc.vm.vcpus = static_cast<uint32_t>(vm.size.vcpus);
  sc.vm.kvm_usable = vm.kvm_usable;
  sc.vm.memory_mib = static_cast<uint32_t>(vm.size.memory_mib);
  sc.vm.drives = {{"rootfs", p.image.rootfs_path, true}, {"scratch", p.dir.Scratch(), false}};
  AddVolumeDrives(vm, p, sc.vm);
  if (p.network.nic) sc.vm.nics.push_back(*p.network.nic);
  vmm::GuestChannelConfig channel;
  channel.socket_path = std::string(shim::TaskDir::kAgentSocketName);  // relative: the VMM's and shim's cwd
  channel.serial_port_name = std::string(guest::kDefaultSerialPortName);
  channel.port = guest::kDefaultVsockPort;
  sc.vm.guest_channel = channel;
  sc.guest_port = guest::kDefaultVsockPort;
  sc.vm.console.mode = vmm::ConsoleConfig::Mode::kFile;
  sc.vm.console.path = p.dir.ConsoleLog();
  sc.vm.vmm_log_path = p.dir.VmmLog();
  if (p.vm_uid && vm.jailer_binary.empty()) {
    sc.vm.sandbox = vmm::VmmSandbox{*p.vm_uid, *p.vm_uid, p.dir.Jail(), p.cgroup_procs};
  }
  if (p.vm_uid && !vm.jailer_binary.empty()) sc.vm.jailer = JailerConfigFor(vm, p);
  sc.stdout_path = task.stdout_path.empty() ? "/dev/null" : task.stdout_path;
  sc.stderr_path = task.stderr_path.empty() ? "/dev/null" : task.stderr_path;
  for (const auto& d : TaskDirectoriesOf(task)) {
    shim::HostFileRoot root{d.name, d.host_path, d.two_way, {}};
    if (d.two_way) root.exclude = {kAllocExcluded};
    sc.file_roots.push_back(root);
  }
  sc.files_max_bytes = vm.files_max_bytes;
  sc.relays = p.network.shim_relays;
  sc.boot_timeout_millis = vm.boot_timeout_millis;
  return sc;
}

DriverState StateFor(const VmPlan& vm, const driver::NomadTask& task, const driver::TaskConfig& config,
                     const Provisioned& p) {
  DriverState state;
  state.task_id = task.id;
  state.alloc_id = task.alloc_id;
  state.task_name = task.name;
  state.task_dir = p.dir.root;
  state.control_socket = p.dir.ControlSocket();
  state.exit_record = p.dir.ExitRecord();
  state.backend = std::string(vmm::BackendName(vm.backend));
  state.vcpus = vm.size.vcpus;
  state.memory_mib = vm.size.memory_mib;
  state.image_reference = p.image.reference;
  state.image_digest = p.image.manifest_digest;
  state.image_rootfs = p.image.rootfs_path;
  state.network_mode = p.network.mode;
  state.netns_path = p.network.netns_path;
  state.tap_name = p.network.tap;
  state.address = p.network.address;
  state.host_lease = p.network.host_lease;
  state.vm_uid = p.vm_uid.value_or(0);
  if (p.vm_uid) state.cgroup = {vm.cgroup_parent, p.vm_id};
  state.jail_dir = p.jail_dir;
  state.config = {
      {"image", config.image}, {"vcpus_from", vm.size.vcpus_from}, {"memory_from", vm.size.memory_from}};
  if (!vm.labels.empty()) state.config["labels"] = vm.labels;
  return state;
}

}  // namespace

uint64_t ScratchBytes(const driver::TaskConfig& config) {
  return config.scratch_size_bytes.value_or(uint64_t{2} << 30);
}

Result<VmPlan> PlanVm(const driver::NomadTask& task, const driver::TaskConfig& config,
                      const driver::PluginConfig& plugin, const StartHost& host) {
  if (task.id.empty()) return Error::InvalidArgument("task has no id");
  VmPlan plan;
  NFC_ASSIGN_OR_RETURN(plan.size, SizeVm(SizingFor(task, config), host.machine));
  PickBackend(plugin, config.backend, host, plan);
  NFC_ASSIGN_OR_RETURN(plan.jailer_binary, JailerFor(plugin, host, plan.backend));
  plan.sandbox = (plugin.sandbox && plan.backend == vmm::Backend::kQemu) || !plan.jailer_binary.empty();
  plan.vm_uids = plugin.vm_uids;
  plan.cgroup_parent = plugin.cgroup_parent;
  plan.cgroup_limits = sandbox::LimitsForVm(
      static_cast<uint64_t>(plan.size.memory_mib), static_cast<uint32_t>(plan.size.vcpus),
      static_cast<uint64_t>(std::max<int64_t>(task.resources.cpu_shares, 0)));
  plan.cgroup_limits.cpu_quota_us = static_cast<uint64_t>(std::max<int64_t>(task.resources.cpu_quota, 0));
  plan.cgroup_limits.cpu_period_us = static_cast<uint64_t>(std::max<int64_t>(task.resources.cpu_period, 0));
  plan.cgroup_limits.cpuset_cpus = task.resources.cpuset_cpus;
  if (plan.size.memory_from == "memory_max" && task.resources.memory_mb > 0) {
    plan.cgroup_limits.memory_soft_bytes =
        (static_cast<uint64_t>(task.resources.memory_mb) + sandbox::kVmmMemoryOverheadMib) << 20;
  }
  plan.kernel_path = config.kernel.value_or(plugin.kernel_path);
  plan.base_initrd_path = config.initrd.value_or(plugin.initrd_path);
  if (config.boot_args) {
    auto words = driver::SplitShellWords(*config.boot_args);
    if (!words.ok()) return std::move(words).error().Context("boot_args");
    plan.kernel_args = std::move(*words);
  }
  plan.image = config.image;
  plan.pull = PullFor(task, config, plugin);
  NFC_ASSIGN_OR_RETURN(plan.process, ProcessFor(task, config));
  plan.hostname = task.name.substr(0, 63);
  if (task.network && !task.network->hostname.empty()) plan.hostname = task.network->hostname;
  if (config.hostname) plan.hostname = *config.hostname;
  if (!config.dns_servers.empty() || !config.dns_search_domains.empty() || !config.dns_options.empty()) {
    plan.dns_override =
        driver::DnsSettings{config.dns_servers, config.dns_search_domains, config.dns_options};
  }
  plan.labels = config.labels;
  plan.planned_tap = PlannedTap(task, plugin.host_network.enabled);
  plan.network_policy.guard = {plugin.egress_guard.enabled, plugin.egress_guard.cidrs,
                               plugin.egress_guard.gateway};
  plan.network_policy.host_network = plugin.host_network.enabled;
  plan.network_policy.host_cidr = plugin.host_network.cidr;
  plan.network_policy.data_dir = plugin.data_dir;
  plan.network_policy.sidecar_bridge = plugin.sidecar_bridge;
  plan.files_max_bytes = config.task_dir_max_bytes.value_or(driver::kDefaultTaskDirMaxBytes);
  NFC_ASSIGN_OR_RETURN(plan.volumes, VolumesFor(task));
  plan.volume_image_bytes = config.volume_size_bytes.value_or(volume::kDefaultImageBytes);
  plan.boot_timeout_millis = plugin.boot_timeout.count();
  return plan;
}

Result<BootPlan> PlanBoot(const VmPlan& vm, const driver::NomadTask& task, const driver::TaskConfig& config,
                          const Provisioned& provisioned) {
  if (provisioned.volumes.size() != vm.volumes.size()) {
    return Error::Internal("provisioning prepared " + std::to_string(provisioned.volumes.size()) +
                           " volumes for " + std::to_string(vm.volumes.size()) + " requests");
  }
  BootPlan plan;
  plan.spec = SpecFor(vm, task, provisioned);
  NFC_RETURN_IF_ERROR(guest::ValidateTaskSpec(plan.spec));
  plan.shim = ShimFor(vm, task, provisioned);
  plan.state = StateFor(vm, task, config, provisioned);
  return plan;
}

}  // namespace nfc::task
