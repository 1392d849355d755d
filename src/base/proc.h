// The one reader of /proc/<pid>/stat (proc(5)): state, parent, CPU time, start time and resident set of a
// process, for liveness checks (base/process.h) and the VMM's cost (shim).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc {

struct ProcStat {
  pid_t pid = 0;
  std::string comm;         // field 2, without the parentheses; may contain spaces and ')'
  char state = '?';         // field 3: R, S, D, Z, X, ...
  pid_t ppid = 0;           // field 4
  uint64_t utime = 0;       // field 14, clock ticks
  uint64_t stime = 0;       // field 15, clock ticks
  uint64_t start_time = 0;  // field 22, clock ticks since boot
  uint64_t rss_pages = 0;   // field 24 (negative values, which the kernel never reports, read as 0)

  // A zombie or dead task still has a /proc entry but is not running anything.
  bool Exited() const { return state == 'Z' || state == 'X'; }
};

// kNotFound when the process does not exist; kDataLoss when the file does not parse.
Result<ProcStat> ReadProcStat(pid_t pid);
// Parses the contents of a stat file; `source` names it in errors.
Result<ProcStat> ParseProcStat(std::string_view text, std::string_view source);

// Clock ticks (utime, stime, start_time) to nanoseconds, using sysconf(_SC_CLK_TCK).
uint64_t TicksToNanos(uint64_t ticks);
// Pages (rss_pages) to bytes, using sysconf(_SC_PAGESIZE).
uint64_t PagesToBytes(uint64_t pages);

}  // namespace nfc
