#include "task/signals.h"

#include <signal.h>
#include <strings.h>

#include <charconv>

namespace nfc::task {
namespace {

struct Named {
  const char* name;
  int number;
};

constexpr Named kSignals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},     {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},   {"FPE", SIGFPE},     {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},     {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL}, {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

// Linux's kernel-side SIGRTMIN/SIGRTMAX (glibc reserves a few for itself, but the guest's workload may not be
// glibc, and the numbers are what travels).
constexpr int kRtMin = 32;
constexpr int kRtMax = 64;

Error Bad(std::string_view name) {
  return Error::InvalidArgument("unknown signal \"" + std::string(name) +
                                "\" (use a name like SIGTERM or SIGHUP, or a number from 1 to 64)");
}

}  // namespace

Result<int> ParseSignal(std::string_view name) {
  if (name.empty()) return Bad(name);
  int number = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), number);
  if (ec == std::errc() && ptr == name.data() + name.size()) {
    if (number < 1 || number > kRtMax) return Bad(name);
    return number;
  }
  std::string_view bare = name;
  if (bare.size() > 3 && strncasecmp(bare.data(), "SIG", 3) == 0) bare.remove_prefix(3);
  for (const auto& s : kSignals) {
    if (bare.size() == std::char_traits<char>::length(s.name) &&
        strncasecmp(bare.data(), s.name, bare.size()) == 0) {
      return s.number;
    }
  }
  // RTMIN, RTMIN+n, RTMAX, RTMAX-n
  auto rt = [&](std::string_view prefix, int base, int sign) -> Result<int> {
    std::string_view rest = bare.substr(prefix.size());
    if (rest.empty()) return base;
    if (rest[0] != (sign > 0 ? '+' : '-')) return Bad(name);
    int n = 0;
    auto [p, e] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), n);
    if (e != std::errc() || p != rest.data() + rest.size()) return Bad(name);
    int v = base + sign * n;
    if (v < kRtMin || v > kRtMax) return Bad(name);
    return v;
  };
  if (bare.size() >= 5 && strncasecmp(bare.data(), "RTMIN", 5) == 0) return rt("RTMIN", kRtMin, +1);
  if (bare.size() >= 5 && strncasecmp(bare.data(), "RTMAX", 5) == 0) return rt("RTMAX", kRtMax, -1);
  return Bad(name);
}

std::string SignalName(int signal) {
  for (const auto& s : kSignals) {
    if (s.number == signal) return std::string("SIG") + s.name;
  }
  if (signal >= kRtMin && signal <= kRtMax) return "SIGRTMIN+" + std::to_string(signal - kRtMin);
  return "signal " + std::to_string(signal);
}

}  // namespace nfc::task
