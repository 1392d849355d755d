// Wall-clock timestamps for records and elapsed milliseconds for timings, written the same way everywhere.
#pragma once

#include <chrono>
#include <cstdint>

namespace nfc {

// Nanoseconds since the Unix epoch (CLOCK_REALTIME): for timestamps stored in records or sent to Nomad.
inline int64_t UnixNanosNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Whole milliseconds elapsed on the monotonic clock since `start`: for timings and deadlines.
inline int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace nfc
