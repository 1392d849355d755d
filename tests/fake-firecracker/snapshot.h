// The stand-in's snapshot files. Firecracker's own formats are its business (a versioned state file and a raw
// guest memory file); the stand-in writes what it needs to play the API's rules and, with --boot-qemu, to
// really resume the guest:
//   snapshot_path  JSON: {"format": "fake-firecracker-snapshot", "version": <the version played>,
//                  "vm": <GET /vm/config at the snapshot>, "open_ports": {<virtserialport id>: bool}}
//   mem_file_path  QEMU's migration stream of the paused VM (--boot-qemu), else a sparse file of the guest's
//                  memory size, as Firecracker's is.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"

namespace nfc::fakefc {

struct SavedVm {
  std::string version;
  nlohmann::json vm;  // the shape of GET /vm/config
  std::map<std::string, bool> open_ports;
};

Status WriteSnapshotFile(const std::string& path, const SavedVm& saved);
// Refuses a file that is not the stand-in's, naming the path.
Result<SavedVm> ReadSnapshotFile(const std::string& path);

// PUT /snapshot/load's network_overrides and vsock_override applied to the saved VM; an iface_id the snapshot
// does not have, or a vsock_override without a vsock device, is refused with the message Firecracker gives.
Result<nlohmann::json> ApplyLoadOverrides(nlohmann::json vm, const nlohmann::json& load);

}  // namespace nfc::fakefc
