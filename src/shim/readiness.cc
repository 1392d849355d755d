#include "shim/readiness.h"

#include <nlohmann/json.hpp>

namespace nfc::shim {
namespace {

using nlohmann::json;

Result<ShimReady> ReadyFromJson(const json& j) {
  ShimReady r;
  const json& shim = j.at("shim");
  r.shim.pid = shim.at("pid").get<pid_t>();
  r.shim.start_time = shim.at("start_time").get<unsigned long long>();
  r.vmm_pid = j.at("vmm_pid").get<int>();
  r.started_at_unix_nanos = j.at("started_at_unix_nanos").get<int64_t>();
  r.exited = j.at("exited").get<bool>();
  r.guest_boot_id = j.at("boot_id").get<std::string>();
  const json& ms = j.at("millis");
  r.timings.vmm_started_millis = ms.at("vmm_started").get<int64_t>();
  r.timings.guest_connected_millis = ms.at("guest_connected").get<int64_t>();
  r.timings.workload_started_millis = ms.at("workload_started").get<int64_t>();
  r.timings.guest_init_started_millis = ms.at("guest_init").get<int64_t>();
  r.timings.guest_workload_exec_millis = ms.at("guest_workload_exec").get<int64_t>();
  r.timings.task_delivered_millis = ms.value("task_delivered", int64_t{0});
  r.timings.guest_delivery_to_root_millis = ms.value("guest_delivery_to_root", int64_t{0});
  r.timings.guest_delivery_to_exec_millis = ms.value("guest_delivery_to_exec", int64_t{0});
  r.mode.warm = j.value("warm", false);
  r.mode.cold_fallback = j.value("cold_fallback", "");
  if (r.shim.pid <= 1)
    return Error::Internal("shim readiness: invalid shim pid " + std::to_string(r.shim.pid));
  return r;
}

}  // namespace

std::string EncodeReady(const ShimReady& r) {
  json j = {{"version", kReadinessVersion},
            {"ready", true},
            {"shim", {{"pid", r.shim.pid}, {"start_time", r.shim.start_time}}},
            {"vmm_pid", r.vmm_pid},
            {"started_at_unix_nanos", r.started_at_unix_nanos},
            {"exited", r.exited},
            {"boot_id", r.guest_boot_id},
            {"millis",
             {{"vmm_started", r.timings.vmm_started_millis},
              {"guest_connected", r.timings.guest_connected_millis},
              {"workload_started", r.timings.workload_started_millis},
              {"guest_init", r.timings.guest_init_started_millis},
              {"guest_workload_exec", r.timings.guest_workload_exec_millis},
              {"task_delivered", r.timings.task_delivered_millis},
              {"guest_delivery_to_root", r.timings.guest_delivery_to_root_millis},
              {"guest_delivery_to_exec", r.timings.guest_delivery_to_exec_millis}}},
            {"warm", r.mode.warm},
            {"cold_fallback", r.mode.cold_fallback}};
  return j.dump() + "\n";
}

std::string EncodeNotReady(const Error& error) {
  json j = {{"version", kReadinessVersion},
            {"ready", false},
            {"code", std::string(ErrorCodeName(error.code()))},
            {"message", error.message()},
            {"recoverable", IsTransient(error.code())}};
  return j.dump() + "\n";
}

Result<ShimReady> DecodeReadiness(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  auto shown = [&] { return std::string(line.substr(0, 200)); };
  if (line.empty()) return Error::Internal("the task shim exited without a readiness reply");
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Error::Internal("the task shim's readiness reply is not JSON: " + shown());
  try {
    int version = j.at("version").get<int>();
    if (version != kReadinessVersion) {
      return Error::Internal("the task shim speaks readiness version " + std::to_string(version) + ", not " +
                             std::to_string(kReadinessVersion) + " (plugin and shim from different builds?)");
    }
    if (j.at("ready").get<bool>()) return ReadyFromJson(j);
    return Error(ErrorCodeFromName(j.at("code").get<std::string>()), j.at("message").get<std::string>());
  } catch (const json::exception& e) {
    return Error::Internal("the task shim's readiness reply is malformed (" + std::string(e.what()) +
                           "): " + shown());
  }
}

}  // namespace nfc::shim
