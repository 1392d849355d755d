#include "driver/host_probe.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "base/process.h"
#include "base/unique_fd.h"

namespace nfc::driver {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

}  // namespace

Result<std::string> ResolveProgram(const std::string& name_or_path) {
  if (name_or_path.empty()) return Error::InvalidArgument("empty program name");
  if (name_or_path.find('/') != std::string::npos) {
    if (IsExecutableFile(name_or_path)) return name_or_path;
    struct stat st;
    if (stat(name_or_path.c_str(), &st) != 0) return Error::Errno(name_or_path);
    return Error::FailedPrecondition(name_or_path + " is not an executable file");
  }
  std::string search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (const char* env_path = std::getenv("PATH"); env_path != nullptr && *env_path != '\0') {
    search = std::string(env_path) + ":" + search;
  }
  size_t start = 0;
  while (start <= search.size()) {
    size_t colon = search.find(':', start);
    std::string dir = search.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + name_or_path;
      if (IsExecutableFile(candidate)) return candidate;
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return Error::NotFound(name_or_path + " not found in PATH");
}

std::string FirstVersionToken(std::string_view text) {
  for (size_t i = 0; i < text.size(); i++) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) continue;
    if (i > 0 && (std::isalnum(static_cast<unsigned char>(text[i - 1])) && text[i - 1] != 'v')) continue;
    size_t j = i;
    int dots = 0;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) {
      if (text[j] == '.') dots++;
      j++;
    }
    std::string_view token = text.substr(i, j - i);
    while (!token.empty() && token.back() == '.') {
      token.remove_suffix(1);
      dots--;
    }
    if (dots >= 1) return std::string(token);
    i = j;
  }
  return "";
}

Result<std::string> ProgramVersion(const std::string& path, std::chrono::milliseconds timeout) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Error::Errno("pipe2");
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  SpawnOptions options;
  options.argv = {path, "--version"};
  options.stdout_fd = write_end.get();
  NFC_ASSIGN_OR_RETURN(Child child, Spawn(options));
  write_end.Reset();

  std::string output;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{read_end.get(), POLLIN, 0};
    int rc = poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return Error::Errno("poll output of " + path);
    if (rc == 0) {
      timed_out = true;
      break;
    }
    char buf[4096];
    ssize_t n = read(read_end.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (output.size() < size_t{64} * 1024) output.append(buf, static_cast<size_t>(n));
  }
  if (timed_out) kill(child.pid, SIGKILL);
  NFC_ASSIGN_OR_RETURN(int status, WaitForExit(child.pid));
  if (timed_out)
    return Error::Timeout(path + " --version did not finish within " + std::to_string(timeout.count()) +
                          " ms");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Error::FailedPrecondition(path + " --version failed: " + DescribeWaitStatus(status));
  }
  std::string version = FirstVersionToken(output);
  if (version.empty()) {
    std::string first_line = output.substr(0, output.find('\n'));
    return Error::FailedPrecondition(path + " --version printed no version: \"" + first_line + "\"");
  }
  return version;
}

std::string KvmDevicePath() {
  const char* override_path = std::getenv("NFC_KVM_DEVICE");
  return override_path && *override_path ? override_path : "/dev/kvm";
}

KvmStatus ProbeKvm(const std::string& device) {
  KvmStatus status;
  struct stat st;
  if (stat(device.c_str(), &st) != 0) {
    status.detail = device + ": " + strerror(errno);
    return status;
  }
  status.present = true;
  int fd = open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    status.detail = "open " + device + " read-write: " + strerror(errno);
    return status;
  }
  close(fd);
  status.accessible = true;
  return status;
}

Status CheckReadableFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Error::Errno(path);
  if (!S_ISREG(st.st_mode)) return Error::FailedPrecondition(path + " is not a regular file");
  if (access(path.c_str(), R_OK) != 0) return Error::Errno(path);
  return Ok();
}

ProgramProbe ProbeProgram(const std::string& name_or_path) {
  ProgramProbe p;
  Result<std::string> path = ResolveProgram(name_or_path);
  if (!path.ok()) {
    p.problem = path.error().message();
    return p;
  }
  p.path = *path;
  Result<std::string> version = ProgramVersion(*path);
  if (!version.ok()) {
    p.problem = version.error().message();
    return p;
  }
  p.version = *version;
  return p;
}

}  // namespace nfc::driver
