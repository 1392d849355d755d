// The Manager's part of warm start (docs/warm-start.md, task/warm_start.h): deciding a start, reporting how
// it went, and queuing template builds.
#include "base/log.h"
#include "task/manager.h"
#include "task/provision.h"

namespace nfc::task {

warm::TemplateStore Manager::Templates(const driver::PluginConfig& config) const {
  return warm::TemplateStore(config.data_dir, deps_.boot_template);
}

WarmStartPlan Manager::PrepareWarmStart(const driver::NomadTask& t, const driver::TaskConfig& tc,
                                        const VmPlan& vm, const Provisioned& p,
                                        const driver::PluginConfig& config, BootPlan& boot) {
  WarmStartPlan warm = PlanWarmStart(WarmStartWanted(config, tc), vm, p, ScratchBytes(tc), Templates(config));
  if (!warm.found) return warm;
  Status attached = AttachTemplate(*warm.found, p.dir, boot);
  if (!attached.ok()) {
    // The files stay in the task dir, which a failed start removes; the shim boots cold.
    warm.cold_reason = "the warm-start template could not be linked: " + attached.error().message();
    log::Warn("warm start not possible", {{"task_id", t.id}, {"error", warm.cold_reason}});
    warm.found.reset();
    boot.shim.warm_start.reset();
  }
  return warm;
}

void Manager::AfterStart(const driver::NomadTask& t, const WarmStartPlan& warm, const shim::ShimReady& ready,
                         const driver::PluginConfig& config) {
  if (warm.found && !ready.mode.warm) {
    Emit(t, "Warm start failed; booted cold", {{"reason", ready.mode.cold_fallback}});
    // A template that does not load will not load next time either: build it again.
    Status removed = Templates(config).Remove(warm.key);
    if (!removed.ok())
      log::Warn("could not remove a failed template", {{"error", removed.error().message()}});
  }
  if (!warm.eligible || ready.mode.warm) return;
  warm::BuildOptions options;
  options.boot_timeout = config.boot_timeout;
  if (template_builds_.Add(warm.key, Templates(config), warm.inputs, options))
    log::Info("queued a warm-start template build", {{"task_id", t.id}, {"key", warm.key}});
}

Result<warm::Template> Manager::BuildTemplate(const driver::NomadTask& t, const driver::TaskConfig& tc) {
  NFC_ASSIGN_OR_RETURN(driver::PluginConfig config, ConfigForNewTask(t.id));
  NFC_ASSIGN_OR_RETURN(VmPlan vm, PlanChecked(t, tc, config));
  // Provisioned as for a start, so that the key comes from the same files and devices; rolled back on return.
  StartTransaction txn(StartDepsFor(), t.id);
  NFC_ASSIGN_OR_RETURN(Provisioned p, Provision(txn, t, vm, config, ScratchBytes(tc)));
  WarmStartPlan plan = PlanWarmStart(/*wanted=*/true, vm, p, ScratchBytes(tc), Templates(config));
  if (!plan.eligible)
    return Error::FailedPrecondition("no warm-start template for this task: " + plan.cold_reason);
  if (plan.found) return *plan.found;
  warm::BuildOptions options;
  options.boot_timeout = config.boot_timeout;
  return Templates(config).Build(plan.inputs, options);
}

void Manager::WaitForTemplateBuilds() {
  template_builds_.WaitIdle();
}

size_t Manager::TemplateBuildsPending() const {
  return template_builds_.pending();
}

size_t Manager::TemplateBuildsFinished() const {
  return template_builds_.finished();
}

}  // namespace nfc::task
