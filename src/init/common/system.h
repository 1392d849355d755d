// What every PID 1 role of nomad-init needs from the kernel before anything else: monotonic timestamps, the
// kernel command line, stdio on the console, rlimits by name. Guest- and host-role agnostic.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc::init {

// CLOCK_MONOTONIC in nanoseconds (what boot timestamps are measured in; comparable across the guest only).
uint64_t MonotonicNs();

// Parses a kernel command line ("a=b c quoted=\"x y\"") into key -> value (value empty for bare words; last
// wins).
std::map<std::string, std::string> ParseKernelCmdline(std::string_view cmdline);
// /proc/cmdline, parsed; empty when /proc is not mounted yet.
std::map<std::string, std::string> ReadKernelCmdline();

// Before /dev exists: occupies closed fds 0-2 with placeholders so that the first descriptors init opens
// (signalfd, epoll...) cannot become its stdio; returns a bitmask of the fds it filled.
// ReplaceStdioPlaceholders later points them at /dev/console (or /dev/null).
int ReserveStdio();
void ReplaceStdioPlaceholders(int mask);

// Sets an rlimit by its lower-case name without "RLIMIT_" ("nofile", "nproc", ...). RLIM_INFINITY is ~0.
Status SetRlimit(std::string_view name, uint64_t soft, uint64_t hard);

// System files init reads (/proc, /sys, the image's /etc/passwd, modules.dep) are small; anything larger is
// refused rather than read into PID 1's memory.
inline constexpr size_t kSystemFileLimit = 16 << 20;
// fs::ReadFile with kSystemFileLimit, following a final symlink (images may link /etc/passwd elsewhere).
Result<std::string> ReadFile(const std::string& path);
// Writes data to path with O_TRUNC|O_CREAT (mode for creation).
Status WriteFile(const std::string& path, std::string_view data, mode_t mode = 0644);

}  // namespace nfc::init
