#include "init/common/system.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "base/fs.h"
#include "base/unique_fd.h"

namespace nfc::init {

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::map<std::string, std::string> ParseKernelCmdline(std::string_view s) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t')) i++;
    if (i >= s.size()) break;
    std::string word;
    bool quoted = false;
    while (i < s.size() && (quoted || (s[i] != ' ' && s[i] != '\n' && s[i] != '\t'))) {
      if (s[i] == '"') {
        quoted = !quoted;
      } else {
        word.push_back(s[i]);
      }
      i++;
    }
    size_t eq = word.find('=');
    if (eq == std::string::npos) {
      out[word] = "";
    } else {
      out[word.substr(0, eq)] = word.substr(eq + 1);
    }
  }
  return out;
}

std::map<std::string, std::string> ReadKernelCmdline() {
  auto content = ReadFile("/proc/cmdline");
  if (!content.ok()) return {};
  return ParseKernelCmdline(*content);
}

int ReserveStdio() {
  int mask = 0;
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) >= 0) continue;
    int p = ::open("/", O_RDONLY | O_DIRECTORY);  // lowest free number: fd itself, as 0..fd-1 are taken
    if (p == fd) mask |= 1 << fd;
  }
  return mask;
}

void ReplaceStdioPlaceholders(int mask) {
  for (int fd = 0; fd < 3; fd++) {
    if (!(mask & (1 << fd))) continue;
    int c = ::open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (c < 0) c = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (c < 0) continue;
    dup2(c, fd);  // dup2 clears close-on-exec on fd
    ::close(c);
  }
}

Status SetRlimit(std::string_view name, uint64_t soft, uint64_t hard) {
  static const struct {
    const char* name;
    int resource;
  } kLimits[] = {
      {"as", RLIMIT_AS},           {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
      {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},       {"locks", RLIMIT_LOCKS},
      {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
      {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
      {"rtprio", RLIMIT_RTPRIO},   {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK}};
  for (const auto& l : kLimits) {
    if (name != l.name) continue;
    rlimit r{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
    if (setrlimit(static_cast<__rlimit_resource>(l.resource), &r) != 0) {
      return Error::Errno("setrlimit " + std::string(name) + " " + std::to_string(soft) + ":" +
                          std::to_string(hard));
    }
    return Ok();
  }
  return Error::InvalidArgument("unknown rlimit \"" + std::string(name) + "\"");
}

Result<std::string> ReadFile(const std::string& path) {
  return fs::ReadFile(path, kSystemFileLimit, fs::FinalSymlink::kFollow);
}

Status WriteFile(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return Error::Errno("open " + path);
  return fs::WriteAll(fd.get(), data, path);
}

}  // namespace nfc::init
