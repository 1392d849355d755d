// Signal names as Nomad sends them (kill_signal, SignalTask: "SIGTERM", "SIGHUP", ...) to Linux signal
// numbers. The guest is Linux on the same architecture family as the host, so numbers carry over unchanged.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc::task {

// Accepts "SIGHUP", "HUP", "sighup", "1"; real-time signals as "SIGRTMIN+3". An error names the value.
Result<int> ParseSignal(std::string_view name);
// "SIGTERM" for 15; "signal 99" for unknown numbers.
std::string SignalName(int signal);

}  // namespace nfc::task
