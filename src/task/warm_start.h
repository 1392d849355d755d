// The task side of warm start (docs/warm-start.md): whether a start may restore a template, and what the
// shim needs for it. The templates themselves (key, store, builds) are nfc::warm's.
//
// A start is warm when warm_start is on (plugin option, task override), the task's VM has the shape the
// templates have (no network interface, no volume: their devices would differ from the template's), and a
// template of its key exists. Otherwise it boots cold, and an eligible start queues the template's build so
// that the next start of the same key is warm.
#pragma once

#include <optional>
#include <string>

#include "base/error.h"
#include "driver/plugin_config.h"
#include "driver/task_config.h"
#include "task/plan.h"
#include "warm/template.h"

namespace nfc::task {

struct WarmStartPlan {
  bool eligible = false;        // the start may use (or build) a template
  std::string cold_reason;      // why this start boots cold; "" when it is warm
  warm::TemplateInputs inputs;  // when eligible
  std::string key;              // when eligible
  std::optional<warm::Template> found;
};

// The task config's warm_start, else the plugin's.
bool WarmStartWanted(const driver::PluginConfig& plugin, const driver::TaskConfig& config);

// Decides, and looks the template up in `store`.
WarmStartPlan PlanWarmStart(bool wanted, const VmPlan& vm, const Provisioned& p, uint64_t scratch_bytes,
                            const warm::TemplateStore& store);

// Hard-links the template's files into the task dir (so the template may go while the VM runs) and makes
// `boot`'s shim config a warm start; boot.shim.vm stays the cold boot the shim falls back to.
Status AttachTemplate(const warm::Template& tmpl, const shim::TaskDir& dir, BootPlan& boot);

}  // namespace nfc::task
