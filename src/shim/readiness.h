// The shim's readiness reply: the one line `nomad-fc-shim start` prints on stdout when the task's workload
// runs (or already ran), or when the start failed; the starter reads it and the detached shim lives on. It
// replaces polling: the shim waits on its own lifecycle and answers once.
//
// One line of JSON, version 1:
//   {"version":1,"ready":true,"shim":{"pid":N,"start_time":T},"vmm_pid":N,"started_at_unix_nanos":N,
//    "exited":false,"boot_id":"...","millis":{"vmm_started":N,"guest_connected":N,"workload_started":N,
//    "guest_init":N,"guest_workload_exec":N,"task_delivered":N,"guest_delivery_to_root":N,
//    "guest_delivery_to_exec":N},"warm":false,"cold_fallback":"..."}
//   {"version":1,"ready":false,"code":"timeout","message":"...","recoverable":true}
// `code` is an nfc::ErrorCode by name (ErrorCodeName), so a transient boot failure reaches Nomad as
// recoverable; `recoverable` is informational for people reading shim logs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/process.h"
#include "shim/types.h"

namespace nfc::shim {

inline constexpr int kReadinessVersion = 1;

struct ShimReady {
  ProcessIdentity shim;
  int vmm_pid = 0;
  int64_t started_at_unix_nanos = 0;
  bool exited = false;  // the workload already ended (a short job): still a successful start
  std::string guest_boot_id;
  StartTimings timings;
  StartMode mode;
};

std::string EncodeReady(const ShimReady& ready);
std::string EncodeNotReady(const Error& error);
// The reply as the starter sees it: the ShimReady, or the shim's error with its code. A line that is not a
// readiness reply (a crash message, nothing at all) is kInternal naming what was read.
Result<ShimReady> DecodeReadiness(std::string_view line);

}  // namespace nfc::shim
