#include "task/warm_start.h"

#include <unistd.h>

#include "guest/task_spec.h"
#include "volume/volume.h"

namespace nfc::task {
namespace {

// The devices a template for this VM must have: its NICs, and its volumes' shapes. An error names the volume.
Status AddDeviceShapes(const VmPlan& vm, const Provisioned& p, warm::TemplateInputs& in) {
  in.nics = p.network.nic ? 1 : 0;
  if (p.volumes.size() != vm.volumes.size())
    return Error::Internal("the volumes provisioned do not match the plan's");
  for (size_t i = 0; i < vm.volumes.size(); i++) {
    auto bytes = volume::DiskBytes(p.volumes[i].path);
    if (!bytes.ok()) return std::move(bytes).error().Context(vm.volumes[i].field);
    in.volumes.push_back({*bytes, vm.volumes[i].read_only});
  }
  return Ok();
}

Status LinkInto(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) != 0) return Error::Errno("link " + from + " to " + to);
  return Ok();
}

}  // namespace

bool WarmStartWanted(const driver::PluginConfig& plugin, const driver::TaskConfig& config) {
  return config.warm_start.value_or(plugin.warm_start);
}

WarmStartPlan PlanWarmStart(bool wanted, const VmPlan& vm, const Provisioned& p, uint64_t scratch_bytes,
                            const warm::TemplateStore& store) {
  WarmStartPlan plan;
  if (!wanted) {
    plan.cold_reason = "warm_start is off";
    return plan;
  }
  warm::TemplateInputs& in = plan.inputs;
  in.backend = vm.backend;
  in.vmm_binary = vm.vmm_binary;
  in.kvm = vm.backend == vmm::Backend::kFirecracker || vm.kvm_usable.value_or(false);
  in.kernel_path = vm.kernel_path;
  in.base_initrd_path = vm.base_initrd_path;
  in.kernel_args = vm.kernel_args;
  in.vcpus = static_cast<uint32_t>(vm.size.vcpus);
  in.memory_mib = static_cast<uint32_t>(vm.size.memory_mib);
  in.image_digest = p.image.manifest_digest;
  in.rootfs_path = p.image.rootfs_path;
  in.scratch_bytes = scratch_bytes;
  if (Status shapes = AddDeviceShapes(vm, p, in); !shapes.ok()) {
    plan.cold_reason = "the task's devices: " + shapes.error().message();
    return plan;
  }
  auto key = warm::TemplateKey(in);
  if (!key.ok()) {
    plan.cold_reason = "no template key: " + key.error().message();
    return plan;
  }
  plan.eligible = true;
  plan.key = *key;
  plan.found = store.Find(plan.key);
  if (!plan.found) plan.cold_reason = "no warm-start template for this image and VM size yet";
  return plan;
}

Status AttachTemplate(const warm::Template& tmpl, const shim::TaskDir& dir, BootPlan& boot) {
  shim::WarmStart w;
  w.template_key = tmpl.key;
  w.snapshot.state_path = dir.root + "/template.state";
  NFC_RETURN_IF_ERROR(LinkInto(tmpl.snapshot.state_path, w.snapshot.state_path));
  if (!tmpl.snapshot.memory_path.empty()) {
    w.snapshot.memory_path = dir.root + "/template.mem";
    NFC_RETURN_IF_ERROR(LinkInto(tmpl.snapshot.memory_path, w.snapshot.memory_path));
  }
  w.initrd_path = dir.root + "/template.initramfs";
  NFC_RETURN_IF_ERROR(LinkInto(tmpl.initrd_path, w.initrd_path));
  // The restored NICs keep the template's MACs: the guest finds each by it and takes the task's.
  guest::TaskSpec delivered = boot.spec;
  for (size_t i = 0; i < boot.shim.vm.nics.size(); i++) {
    w.nic_macs.push_back(warm::TemplateMac(i));
    if (i < delivered.network.interfaces.size())
      delivered.network.interfaces[i].current_mac = warm::TemplateMac(i);
  }
  w.spec_json = guest::TaskSpecToJson(delivered);
  boot.shim.warm_start = std::move(w);
  return Ok();
}

}  // namespace nfc::task
