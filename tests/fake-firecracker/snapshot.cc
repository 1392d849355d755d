#include "snapshot.h"

#include <fstream>

namespace nfc::fakefc {

constexpr const char* kFormat = "fake-firecracker-snapshot";

Status WriteSnapshotFile(const std::string& path, const SavedVm& saved) {
  nlohmann::json j = {{"format", kFormat}, {"version", saved.version}, {"vm", saved.vm}};
  j["open_ports"] = saved.open_ports;
  std::ofstream f(path, std::ios::trunc);
  f << j.dump() << "\n";
  f.close();
  if (!f) return Error::Internal("cannot write " + path);
  return Ok();
}

Result<SavedVm> ReadSnapshotFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Error::NotFound("cannot open " + path);
  nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  if (!j.is_object() || j.value("format", "") != kFormat || !j.contains("vm") || !j["vm"].is_object()) {
    return Error::DataLoss(path + " is not a snapshot this Firecracker wrote");
  }
  SavedVm saved;
  saved.version = j.value("version", "");
  saved.vm = j["vm"];
  if (j.contains("open_ports") && j["open_ports"].is_object()) {
    for (const auto& [id, open] : j["open_ports"].items()) saved.open_ports[id] = open.is_boolean() && open;
  }
  return saved;
}

Result<nlohmann::json> ApplyLoadOverrides(nlohmann::json vm, const nlohmann::json& load) {
  for (const auto& o : load.value("network_overrides", nlohmann::json::array())) {
    bool found = false;
    for (auto& nic : vm["network-interfaces"]) {
      if (nic.value("iface_id", "") == o.value("iface_id", "")) {
        nic["host_dev_name"] = o.value("host_dev_name", "");
        found = true;
      }
    }
    if (!found) {
      return Error::InvalidArgument("Load snapshot error: Invalid network override: no interface " +
                                    o.value("iface_id", "") + " in the snapshot");
    }
  }
  if (load.contains("vsock_override")) {
    if (!vm.contains("vsock")) {
      return Error::InvalidArgument(
          "Load snapshot error: vsock_override given, but the snapshot has no vsock");
    }
    vm["vsock"]["uds_path"] = load["vsock_override"].value("uds_path", "");
  }
  return vm;
}

}  // namespace nfc::fakefc
