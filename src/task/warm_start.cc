#include "task/warm_start.h"

#include <unistd.h>

#include "guest/task_spec.h"

namespace nfc::task {
namespace {

// Why a VM of this shape cannot be a template's: "" when it can.
std::string ShapeBlocker(const Provisioned& p, const VmPlan& vm) {
  if (p.network.nic) {
    return "the task has a network interface; warm start restores VMs without one (the template's device "
           "list has none)";
  }
  if (!vm.volumes.empty()) return "the task has volumes; warm start restores VMs without them";
  return "";
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
  plan.cold_reason = ShapeBlocker(p, vm);
  if (!plan.cold_reason.empty()) return plan;
  warm::TemplateInputs& in = plan.inputs;
  in.backend = vm.backend;
  in.vmm_binary = vm.vmm_binary;
  in.kernel_path = vm.kernel_path;
  in.base_initrd_path = vm.base_initrd_path;
  in.kernel_args = vm.kernel_args;
  in.vcpus = static_cast<uint32_t>(vm.size.vcpus);
  in.memory_mib = static_cast<uint32_t>(vm.size.memory_mib);
  in.image_digest = p.image.manifest_digest;
  in.rootfs_path = p.image.rootfs_path;
  in.scratch_bytes = scratch_bytes;
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
  w.spec_json = guest::TaskSpecToJson(boot.spec);
  boot.shim.warm_start = std::move(w);
  return Ok();
}

}  // namespace nfc::task
