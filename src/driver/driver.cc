#include "driver/driver.h"

#include "base/log.h"

#ifndef NFC_VERSION_STRING
#error "NFC_VERSION_STRING must be defined by the build"
#endif

namespace nfc::driver {

std::string_view PluginVersion() {
  return NFC_VERSION_STRING;
}

Driver::Driver(std::string name, std::unique_ptr<TaskManager> tasks, TaskEventHub* events)
    : name_(std::move(name)),
      own_events_(events ? nullptr : std::make_unique<TaskEventHub>()),
      events_(events ? events : own_events_.get()),
      tasks_(std::move(tasks)) {}

Status Driver::SetConfig(std::string_view msgpack_config, bool runtime_instance) {
  NFC_ASSIGN_OR_RETURN(PluginConfig config, DecodePluginConfigMsgpack(msgpack_config));
  NFC_RETURN_IF_ERROR(tasks_->Configure(config));
  std::lock_guard lock(mu_);
  if (!warned_ || !(config == config_)) {
    for (const std::string& warning : config.warnings) log::Warn(warning);
    warned_ = true;
  }
  log::Debug("plugin configured", {{"backend", BackendName(config.backend)},
                                   {"kernel_path", config.kernel_path},
                                   {"data_dir", config.data_dir},
                                   {"runtime_instance", runtime_instance}});
  config_ = std::move(config);
  return Ok();
}

PluginConfig Driver::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

Status Driver::Init() {
  {
    std::lock_guard lock(mu_);
    if (initialized_) return Ok();
    initialized_ = true;
  }
  Status status = tasks_->Init();
  if (!status.ok()) {
    std::lock_guard lock(mu_);
    initialized_ = false;  // let the next Init/Fingerprint try again
  }
  return status;
}

FingerprintResult Driver::Fingerprint() const {
  return ProbeFingerprint(config(), name_, std::string(PluginVersion()));
}

}  // namespace nfc::driver
