#include "task/driver_state.h"

namespace nfc::task {

std::string DriverState::Encode() const {
  nlohmann::json j = {
      {"version", kDriverStateVersion},
      {"task_id", task_id},
      {"alloc_id", alloc_id},
      {"task_name", task_name},
      {"task_dir", task_dir},
      {"control_socket", control_socket},
      {"exit_record", exit_record},
      {"shim", {{"pid", shim.pid}, {"start_time", shim.start_time}}},
      {"backend", backend},
      {"vcpus", vcpus},
      {"memory_mib", memory_mib},
      {"image",
       {{"reference", image_reference}, {"manifest_digest", image_digest}, {"rootfs", image_rootfs}}},
      {"started_at_unix_nanos", started_at_unix_nanos},
      {"config", config},
  };
  if (!network_mode.empty()) {
    j["network"] = {{"mode", network_mode}, {"netns", netns_path}, {"tap", tap_name}, {"address", address}};
    if (!host_lease.empty()) j["network"]["host_lease"] = host_lease;
  }
  if (vm_uid != 0) {
    j["sandbox"] = {{"uid", vm_uid}};
    if (!cgroup.name.empty()) {
      j["sandbox"]["cgroup_parent"] = cgroup.parent;
      j["sandbox"]["cgroup"] = cgroup.name;
    }
    if (!jail_dir.empty()) j["sandbox"]["jail"] = jail_dir;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<DriverState> DriverState::Decode(std::string_view bytes) {
  if (bytes.empty()) return Error::InvalidArgument("task handle has no driver state");
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Error::InvalidArgument("task handle's driver state is not a JSON object (" +
                                  std::to_string(bytes.size()) + " bytes)");
  }
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer()) {
    return Error::InvalidArgument("task handle's driver state has no version");
  }
  if (version->get<int>() != kDriverStateVersion) {
    return Error::InvalidArgument("task handle's driver state has version " +
                                  std::to_string(version->get<int>()) + "; this plugin reads version " +
                                  std::to_string(kDriverStateVersion));
  }
  DriverState s;
  std::string field;
  try {
    auto req = [&](const char* name) -> const nlohmann::json& {
      field = name;
      return j.at(name);
    };
    s.task_id = req("task_id").get<std::string>();
    s.alloc_id = req("alloc_id").get<std::string>();
    s.task_name = req("task_name").get<std::string>();
    s.task_dir = req("task_dir").get<std::string>();
    s.control_socket = req("control_socket").get<std::string>();
    s.exit_record = req("exit_record").get<std::string>();
    s.shim.pid = req("shim").at("pid").get<pid_t>();
    s.shim.start_time = j.at("shim").at("start_time").get<unsigned long long>();
    s.backend = req("backend").get<std::string>();
    s.vcpus = req("vcpus").get<int>();
    s.memory_mib = req("memory_mib").get<int64_t>();
    const auto& image = req("image");
    s.image_reference = image.at("reference").get<std::string>();
    s.image_digest = image.at("manifest_digest").get<std::string>();
    s.image_rootfs = image.at("rootfs").get<std::string>();
    s.started_at_unix_nanos = req("started_at_unix_nanos").get<int64_t>();
    if (j.contains("network")) {
      field = "network";
      const auto& n = j.at("network");
      s.network_mode = n.at("mode").get<std::string>();
      s.netns_path = n.value("netns", "");
      s.tap_name = n.value("tap", "");
      s.address = n.value("address", "");
      s.host_lease = n.value("host_lease", "");
    }
    if (j.contains("sandbox")) {
      field = "sandbox";
      const auto& sb = j.at("sandbox");
      s.vm_uid = sb.at("uid").get<uint32_t>();
      s.cgroup = {sb.value("cgroup_parent", ""), sb.value("cgroup", "")};
      s.jail_dir = sb.value("jail", "");
    }
    field = "config";
    s.config = j.value("config", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    return Error::InvalidArgument("task handle's driver state: field \"" + field + "\": " + e.what());
  }
  if (s.task_dir.empty() || s.task_dir[0] != '/') {
    return Error::InvalidArgument("task handle's driver state: task_dir \"" + s.task_dir +
                                  "\" is not absolute");
  }
  if (s.shim.pid <= 1) {
    return Error::InvalidArgument("task handle's driver state: shim pid " + std::to_string(s.shim.pid) +
                                  " is not a task shim");
  }
  return s;
}

std::string StartRecord::Encode() const {
  nlohmann::json j = {{"version", kDriverStateVersion},
                      {"task_id", task_id},
                      {"image_digest", image_digest},
                      {"starter", {{"pid", starter.pid}, {"start_time", starter.start_time}}}};
  if (!tap.empty()) j["network"] = {{"netns", netns_path}, {"tap", tap}};
  if (!cgroup.name.empty()) j["cgroup"] = {{"parent", cgroup.parent}, {"name", cgroup.name}};
  if (!jail_dir.empty()) j["jail"] = jail_dir;
  return j.dump();
}

Result<StartRecord> StartRecord::Decode(std::string_view bytes) {
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error::InvalidArgument("start record is not a JSON object");
  try {
    if (j.at("version").get<int>() != kDriverStateVersion) {
      return Error::InvalidArgument("start record has version " + j.at("version").dump());
    }
    StartRecord r;
    r.task_id = j.at("task_id").get<std::string>();
    r.image_digest = j.at("image_digest").get<std::string>();
    r.starter.pid = j.at("starter").at("pid").get<pid_t>();
    r.starter.start_time = j.at("starter").at("start_time").get<unsigned long long>();
    if (j.contains("network")) {
      r.netns_path = j.at("network").at("netns").get<std::string>();
      r.tap = j.at("network").at("tap").get<std::string>();
    }
    if (j.contains("cgroup")) {
      r.cgroup = {j.at("cgroup").at("parent").get<std::string>(),
                  j.at("cgroup").at("name").get<std::string>()};
    }
    r.jail_dir = j.value("jail", "");
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Error::InvalidArgument(std::string("start record: ") + e.what());
  }
}

}  // namespace nfc::task
