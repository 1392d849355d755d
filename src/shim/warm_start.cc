// Warm start in the shim (docs/warm-start.md): restore the VM from its template, fall back to the task's cold
// boot when the restore fails, and hand the restored guest its task once it answers.
#include <sys/random.h>

#include <chrono>

#include "base/log.h"
#include "shim/supervisor.h"

namespace nfc::shim {
namespace {

// The task's VM as its template saved it: the task's drives, TAPs and sockets behind the template's devices.
Result<vmm::VmConfig> RestoredVm(const vmm::VmConfig& cold, const WarmStart& w) {
  vmm::VmConfig restored = cold;
  restored.restore_from = w.snapshot;
  restored.initrd_path = w.initrd_path;
  if (w.nic_macs.size() != restored.nics.size()) {
    return Error::InvalidArgument("warm_start.nic_macs: " + std::to_string(w.nic_macs.size()) + " MACs for " +
                                  std::to_string(restored.nics.size()) + " network interfaces");
  }
  for (size_t i = 0; i < restored.nics.size(); i++) {
    restored.nics[i].mac = w.nic_macs[i];
    restored.nics[i].mtu = 0;
  }
  return restored;
}

}  // namespace

Result<std::unique_ptr<vmm::Vmm>> Supervisor::StartWarmOrCold() {
  if (config_.warm_start) {
    auto restored = RestoredVm(config_.vm, *config_.warm_start);
    auto vmm = restored.ok() ? make_vmm_(config_.backend, *restored)
                             : Result<std::unique_ptr<vmm::Vmm>>(restored.error());
    Status started = vmm.ok() ? (*vmm)->Start() : Status(vmm.error());
    if (started.ok()) {
      mode_.warm = true;
      awaiting_delivery_ = true;
      return vmm;
    }
    // The VMM layer left nothing running: boot the task's own VM instead (its initramfs holds the task).
    mode_.cold_fallback = "restoring the warm-start template " + config_.warm_start->template_key +
                          " failed: " + started.error().message();
    log::Warn("warm start failed; booting cold", {{"error", mode_.cold_fallback}});
  }
  NFC_ASSIGN_OR_RETURN(std::unique_ptr<vmm::Vmm> vmm, make_vmm_(config_.backend, config_.vm));
  NFC_RETURN_IF_ERROR_CTX(vmm->Start(), "start the VM");
  return vmm;
}

// A restored template waits for its task (PHASE_AWAITING_TASK). A guest in another phase already has it: the
// reply to an earlier delivery was lost with its connection.
Status Supervisor::DeliverTask(guest::AgentClient& agent) {
  if (agent.initial_status().phase != guest::GuestPhase::kAwaitingTask) {
    awaiting_delivery_ = false;
    return Ok();
  }
  std::string entropy(64, '\0');
  if (::getrandom(entropy.data(), entropy.size(), 0) != static_cast<ssize_t>(entropy.size()))
    return Error::Errno("getrandom (entropy for the restored guest)");
  // The guest's clock stopped when the template was saved: it takes the host's.
  int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  NFC_RETURN_IF_ERROR_CTX(agent.DeliverTask(config_.warm_start->spec_json, entropy, now_ns),
                          "hand the restored guest its task");
  awaiting_delivery_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    task_delivered_millis_ = MillisSinceStart();
  }
  // Answered once the guest has taken the start's first steps (it serves requests between them).
  NFC_ASSIGN_OR_RETURN(guest::GuestStatus status, agent.QueryStatus());
  std::lock_guard<std::mutex> lock(mu_);
  boot_id_ = status.boot_id;  // drawn anew by the guest: the template's was shared by every restored VM
  return Ok();
}

}  // namespace nfc::shim
