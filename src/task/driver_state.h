// DriverState: what TaskHandle.driver_state carries, so that a *fresh* plugin process can find a task again
// (RecoverTask gets no task config after an agent restart, reference 5.9 and pitfall 11). Versioned JSON:
//
// {"version": 1,
//  "task_id": "<alloc>/<task>/<hex>", "alloc_id": "...", "task_name": "...",
//  "task_dir": "<data_dir>/tasks/<name>",             the state directory (shim/task_dir.h)
//  "control_socket": "<task_dir>/control.sock",
//  "exit_record": "<task_dir>/exit.json",
//  "shim": {"pid": 1234, "start_time": 5678},       pid + kernel start time (guards against pid reuse)
//  "backend": "qemu", "vcpus": 1, "memory_mib": 256,
//  "image": {"reference": "...", "manifest_digest": "sha256:...", "rootfs": "..."},
//  "started_at_unix_nanos": ...,
//  "network": {"mode": "group", "netns": "...", "tap": "...", "address": "..."},   optional
//             host mode: {"mode": "host", "tap": "...", "address": "<guest>", "host_lease": "10.229.0.4/30"}
//  "sandbox": {"uid": 200000, "cgroup_parent": "/nomad-firecracker", "cgroup": "nfc-...", "jail": "..."},
//                                                   optional: the VMM's uid (and gid) lease, its cgroup,
//                                                   Firecracker's jailer chroot (vmm::JailerDir)
//  "config": {...}                                   the decoded task config, as given
// }
//
// Unknown fields are ignored (a newer plugin may add some); a missing required field or another version is a
// clear error, so RecoverTask fails and Nomad restarts the task instead of guessing.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/process.h"

namespace nfc::task {

inline constexpr int kDriverStateVersion = 1;
// TaskHandle.version we put on handles (0 is Nomad's "pre-0.9 handle").
inline constexpr int kTaskHandleVersion = 1;

struct DriverState {
  std::string task_id;
  std::string alloc_id;
  std::string task_name;
  std::string task_dir;
  std::string control_socket;
  std::string exit_record;
  ProcessIdentity shim;
  std::string backend;
  int vcpus = 0;
  int64_t memory_mib = 0;
  std::string image_reference;
  std::string image_digest;
  std::string image_rootfs;
  int64_t started_at_unix_nanos = 0;
  std::string network_mode;  // "host", "group", "none"; empty: none configured
  std::string netns_path;
  std::string tap_name;
  std::string address;
  std::string host_lease;  // host mode: the /30 of the plugin's pool ("10.229.0.4/30"); empty: none
  uint32_t vm_uid = 0;     // the VMM's uid/gid lease when sandboxed; 0: none
  struct Cgroup {
    std::string parent, name;  // <parent>/<name> (sandbox/cgroup.h); empty: none
    bool operator==(const Cgroup&) const = default;
  } cgroup;
  std::string jail_dir;  // Firecracker's chroot through the jailer; empty: none
  nlohmann::json config = nlohmann::json::object();

  std::string Encode() const;
  static Result<DriverState> Decode(std::string_view bytes);
};

// StartRecord: written into a new task dir (`start.json`) before anything else of the task exists:
//   {"version": 1, "task_id": "...", "image_digest": "sha256:...", "starter": {"pid": N, "start_time": T},
//    "network": {"netns": "...", "tap": "..."},                      network: bridge or host mode (no netns)
//    "cgroup": {"parent": "...", "name": "..."}, "jail": "..."}      the sandbox's, when confined
// A task dir with a start record whose starter (the plugin process running StartTask) is gone and without
// driver_state.json (written once the workload runs, right before StartTask returns) belongs to a StartTask
// interrupted by the plugin's death: Nomad got no handle, restarts the task under a new id and never calls
// RecoverTask or DestroyTask for it, so the next runtime instance removes it (Manager::Init).
inline constexpr std::string_view kStartRecordFile = "start.json";

struct StartRecord {
  std::string task_id;
  std::string image_digest;  // the image lease held under task_id
  ProcessIdentity starter;
  std::string netns_path, tap;  // the TAP the start may have created (bridge mode), so cleanup removes it
  DriverState::Cgroup cgroup;   // the sandboxed VMM's cgroup the start may have created, likewise
  std::string jail_dir;         // Firecracker's jailer chroot, likewise

  std::string Encode() const;
  static Result<StartRecord> Decode(std::string_view bytes);
};

}  // namespace nfc::task
