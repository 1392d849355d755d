// ExitResult: how a task (or one exec'd command) ended. One value type from the guest's report to Nomad's
// WaitTask answer: nomad-init fills it, the shim records it (exit.json) and serves it, the plugin hands it to
// the RPC layer. It lives in base because every folder on that path already depends on base and on nothing
// else in common (the driver port must not depend on the guest protocol's folder). Wire conversions stay at
// each protocol's edge (guest/protocol.cc, shim/control_codec.cc, driver/rpc/task_proto.cc).
#pragma once

#include <cstdint>
#include <string>

namespace nfc {

struct ExitResult {
  int exit_code = 0;  // 128+signal when killed; 125 init failure, 126 not executable, 127 not found
  int signal = 0;
  bool oom_killed = false;
  // Non-empty when the task failed with a message a person reads in `nomad alloc status`: the workload could
  // not start, or the VM ended without the guest reporting the workload's result (VMM crash, guest kernel
  // panic, boot timeout).
  std::string err;
  int64_t completed_at_unix_nanos = 0;  // 0: not known (yet)

  bool operator==(const ExitResult&) const = default;
};

}  // namespace nfc
