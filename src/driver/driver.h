// Driver: the protobuf-free core of the Nomad task driver. It owns the identity (name, version), the agent's
// plugin configuration, the fingerprint and the task-event hub, and delegates the task lifecycle to a
// TaskManager. The gRPC services in rpc/ are thin adapters over this class. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "base/error.h"
#include "driver/fingerprint.h"
#include "driver/plugin_config.h"
#include "driver/spec.h"
#include "driver/task_config.h"
#include "driver/task_events.h"
#include "driver/task_manager.h"

namespace nfc::driver {

// Nomad's only driver plugin API version (plugins/drivers/versions.go).
inline constexpr std::string_view kDriverApiVersion = "v0.1.0";
// The plugin's own semantic version (project version from CMake).
std::string_view PluginVersion();

class Driver {
 public:
  // `events` (not owned) must outlive the driver; null: the driver owns one.
  Driver(std::string name, std::unique_ptr<TaskManager> tasks, TaskEventHub* events = nullptr);

  const std::string& name() const { return name_; }

  spec::Node ConfigSchema() const { return PluginConfigSpec(); }
  spec::Node TaskSchema() const { return TaskConfigSpec(); }

  // SetConfig: decodes and validates; idempotent, no side effects besides remembering the config. Warnings
  // about ignored options are logged once per distinct config.
  Status SetConfig(std::string_view msgpack_config, bool runtime_instance);
  PluginConfig config() const;

  // Driver.Init or the first Fingerprint, whichever comes first; later calls are no-ops.
  Status Init();

  FingerprintResult Fingerprint() const;
  TaskManager::Capabilities Capabilities() const { return tasks_->capabilities(); }

  TaskManager& tasks() { return *tasks_; }
  TaskEventHub& events() { return *events_; }

 private:
  const std::string name_;
  std::unique_ptr<TaskEventHub> own_events_;
  TaskEventHub* events_;
  std::unique_ptr<TaskManager> tasks_;
  mutable std::mutex mu_;
  PluginConfig config_;       // guarded by mu_
  bool warned_ = false;       // guarded by mu_
  bool initialized_ = false;  // guarded by mu_
};

}  // namespace nfc::driver
