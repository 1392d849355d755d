// The durable record of how a task ended: `exit.json` in the task's state directory.
//
// The shim writes it once, before it acknowledges the result to the guest and before it answers any waiter,
// so a plugin that restarts at any moment finds either no record (the task has not ended, ask the shim) or a
// complete one (temp file + fsync + rename + fsync of the directory: never a torn or empty file after a
// crash).
//
// Format (version 1):
// {"version":1,"exit_code":3,"signal":0,"oom_killed":false,"err":"","completed_at_unix_nanos":N}
#pragma once

#include <optional>
#include <string>

#include "base/error.h"
#include "shim/types.h"

namespace nfc::shim {

inline constexpr int kExitRecordVersion = 1;

// Atomically replaces `path` with the record. Durable when it returns OK.
Status WriteExitRecord(const std::string& path, const ExitResult& result);

// nullopt when no record exists; an error when it exists but cannot be read or parsed (named with the path).
Result<std::optional<ExitResult>> ReadExitRecord(const std::string& path);

}  // namespace nfc::shim
