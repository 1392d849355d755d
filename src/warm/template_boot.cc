#include "warm/template_boot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "base/fs.h"
#include "guest/agent_client.h"
#include "guest/control_channel.h"
#include "guest/initramfs_cpio.h"
#include "guest/task_spec.h"
#include "image/store.h"
#include "network/netns.h"
#include "network/tap_redirect.h"

namespace nfc::warm {
namespace {

using Clock = std::chrono::steady_clock;

// What nomad-init reads in a template: only the control channel applies until the real task arrives.
guest::TaskSpec TemplateSpec() {
  guest::TaskSpec spec;
  spec.task_id = "warm-start-template";
  spec.await_task = true;
  spec.root.device = "/dev/vda";
  spec.scratch.device = "/dev/vdb";
  spec.control.serial_port = std::string(guest::kDefaultSerialPortName);
  return spec;
}

// In the build's own network namespace: no other interface can have the name.
std::string TapName(size_t i) {
  return "nfc-template" + std::to_string(i);
}

// The task pipeline lays out a task's VM the same way (task/plan.cc): the ids and order must match.
vmm::VmConfig TemplateVm(const TemplateInputs& in, const std::string& dir) {
  vmm::VmConfig c;
  c.id = "nfc-template-" + fs::TempName();
  c.state_dir = dir;
  c.vmm_binary = in.vmm_binary;
  c.kernel_path = in.kernel_path;
  c.initrd_path = dir + "/" + std::string(kInitrdName);
  c.kernel_args = in.kernel_args;
  c.vcpus = in.vcpus;
  c.memory_mib = in.memory_mib;
  c.drives = {{"rootfs", in.rootfs_path, true}, {"scratch", dir + "/scratch", false}};
  for (size_t i = 0; i < in.volumes.size(); i++)
    c.drives.push_back({vmm::VolumeDriveId(i), dir + "/" + vmm::VolumeDriveId(i), in.volumes[i].read_only});
  for (size_t i = 0; i < in.nics; i++) c.nics.push_back({vmm::NicId(i), TapName(i), TemplateMac(i), 0});
  vmm::GuestChannelConfig channel;
  channel.socket_path = dir + "/agent.sock";
  channel.serial_port_name = std::string(guest::kDefaultSerialPortName);
  channel.port = guest::kDefaultVsockPort;
  c.guest_channel = channel;
  c.console = {vmm::ConsoleConfig::Mode::kFile, dir + "/console.log", 1 << 20};
  c.vmm_log_path = dir + "/vmm.log";
  // The builder's thread lives as long as the VM: a plugin that dies mid-build takes the VM with it.
  c.kill_with_owner = true;
  return c;
}

Status AwaitTaskPhase(guest::AgentClient& agent, Clock::time_point deadline) {
  guest::GuestStatus status = agent.initial_status();
  while (status.phase != guest::GuestPhase::kAwaitingTask) {
    if (Clock::now() >= deadline) {
      return Error::Timeout(std::string("the template guest is in phase ") +
                            std::string(guest::GuestPhaseName(status.phase)) + ", not awaiting its task");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    NFC_ASSIGN_OR_RETURN(status, agent.QueryStatus());
  }
  return Ok();
}

// Read-only for everyone: a jailed Firecracker opens them as the VM's own uid. They hold no task's data (the
// template never saw one) and a restored guest reseeds its RNG before anything runs.
Status ShareReadOnly(const std::string& path) {
  if (::chmod(path.c_str(), 0644) != 0) return Error::Errno("chmod " + path);
  return Ok();
}

Result<BootResult> SnapshotRunningTemplate(vmm::Vmm& vm, const TemplateInputs& in, const std::string& dir,
                                           const BuildOptions& options, Clock::time_point t0) {
  auto deadline = t0 + options.boot_timeout;
  NFC_ASSIGN_OR_RETURN(UniqueFd fd, vm.ConnectGuest(guest::kDefaultVsockPort, options.boot_timeout));
  guest::AgentClient::Options agent_options;
  agent_options.client_name = "nomad-driver-firecracker template build";
  agent_options.handshake_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(deadline - Clock::now(), Clock::duration(std::chrono::seconds(5))));
  NFC_ASSIGN_OR_RETURN(auto agent, guest::AgentClient::Connect(std::move(fd), agent_options));
  NFC_RETURN_IF_ERROR(AwaitTaskPhase(*agent, deadline));
  BootResult result;
  result.memory_file = in.backend == vmm::Backend::kFirecracker;
  vmm::SnapshotFiles files{dir + "/" + std::string(kStateName),
                           result.memory_file ? dir + "/" + std::string(kMemoryName) : ""};
  NFC_RETURN_IF_ERROR_CTX(vm.Snapshot(files), "snapshot");
  agent.reset();
  NFC_RETURN_IF_ERROR(ShareReadOnly(files.state_path));
  if (result.memory_file) NFC_RETURN_IF_ERROR(ShareReadOnly(files.memory_path));
  result.millis = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  return result;
}

// The disks and TAPs that stand in for a task's volumes and NICs while the template is built. The volumes are
// sparse files of the task's sizes (the guest never reads them); the TAPs are attached to nothing.
Status MakeStandInDevices(const TemplateInputs& in, const std::string& dir) {
  for (size_t i = 0; i < in.volumes.size(); i++) {
    std::string path = dir + "/" + vmm::VolumeDriveId(i);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return Error::Errno("create " + path);
    if (::ftruncate(fd.get(), static_cast<off_t>(in.volumes[i].bytes)) != 0)
      return Error::Errno("size " + path + " to " + std::to_string(in.volumes[i].bytes) + " bytes");
  }
  for (size_t i = 0; i < in.nics; i++) NFC_RETURN_IF_ERROR(network::CreateDetachedTap(TapName(i)));
  return Ok();
}

Result<BootResult> BootAndSnapshotHere(const TemplateInputs& in, const std::string& dir,
                                       const BuildOptions& options) {
  NFC_RETURN_IF_ERROR(
      guest::WriteTaskInitramfs(in.base_initrd_path, TemplateSpec(), dir + "/" + std::string(kInitrdName)));
  NFC_RETURN_IF_ERROR(ShareReadOnly(dir + "/" + std::string(kInitrdName)));
  NFC_RETURN_IF_ERROR_CTX(image::CreateScratchDisk(dir + "/scratch", in.scratch_bytes), "scratch disk");
  NFC_RETURN_IF_ERROR_CTX(MakeStandInDevices(in, dir), "stand-in devices");
  vmm::VmConfig config = TemplateVm(in, dir);
  config.allow_kvm = options.allow_kvm && in.kvm;
  config.kvm_usable = config.allow_kvm;  // the task pipeline's probe decided it (TemplateInputs::kvm)
  NFC_ASSIGN_OR_RETURN(std::unique_ptr<vmm::Vmm> vm, vmm::CreateVmm(in.backend, config));
  auto t0 = Clock::now();
  NFC_RETURN_IF_ERROR_CTX(vm->Start(), "start the template VM");
  auto result = SnapshotRunningTemplate(*vm, in, dir, options, t0);
  Status killed = vm->Kill();
  auto ended = vm->Wait(std::chrono::seconds(30));
  if (!result.ok()) {
    std::string console = fs::ReadFile(dir + "/console.log", 1 << 20).value_or("");
    if (console.size() > 600) console = console.substr(console.size() - 600);
    return std::move(result).error().Context(console.empty() ? "template VM"
                                                             : "template VM (console: " + console + ")");
  }
  if (!killed.ok()) return std::move(killed).error().Context("end the template VM");
  if (!ended.ok()) return std::move(ended).error().Context("end the template VM");
  // Only the snapshot and the initramfs are the template: the scratch disk's contents are never read (the
  // guest mounted nothing), each restored VM gets its own, and so on for the volumes' stand-ins.
  for (const char* leftover : {"/scratch", "/agent.sock"}) (void)::unlink((dir + leftover).c_str());
  for (size_t i = 0; i < in.volumes.size(); i++) (void)::unlink((dir + "/" + vmm::VolumeDriveId(i)).c_str());
  return result;
}

}  // namespace

Result<BootResult> BootAndSnapshot(const TemplateInputs& in, const std::string& dir,
                                   const BuildOptions& options) {
  if (in.nics == 0) return BootAndSnapshotHere(in, dir, options);
  // A VM with network interfaces needs TAPs to start: they are made in a namespace of the build's own, so
  // that the template never touches the host's network, and go with it.
  Result<BootResult> result = Error::Internal("the template build did not run");
  Status ran = network::RunInNewNetns([&]() -> Status {
    result = BootAndSnapshotHere(in, dir, options);
    return Ok();
  });
  if (!ran.ok()) return std::move(ran).error().Context("the template build's network namespace");
  return result;
}

}  // namespace nfc::warm
