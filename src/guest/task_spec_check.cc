// The semantic checks of a TaskSpec (ValidateTaskSpec), shared by the host before boot and the guest after
// parsing; task_spec.cc has the strict decoding and the encoding.
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>

#include "guest/task_spec.h"

namespace nfc::guest {
namespace {

const std::set<std::string>& KnownRlimits() {
  static const std::set<std::string> names = {"as",      "core",     "cpu",        "data",   "fsize", "locks",
                                              "memlock", "msgqueue", "nice",       "nofile", "nproc", "rss",
                                              "rtprio",  "rttime",   "sigpending", "stack"};
  return names;
}

// "a.b.c.d:port", port 1-65535.
bool IsIpv4Port(const std::string& text) {
  unsigned a = 0, b = 0, c = 0, d = 0, port = 0;
  char end = 0;
  int n = std::sscanf(text.c_str(), "%3u.%3u.%3u.%3u:%5u%c", &a, &b, &c, &d, &port, &end);
  return n == 5 && a < 256 && b < 256 && c < 256 && d < 256 && port > 0 && port < 65536;
}

bool IsAbsoluteClean(const std::string& p) {
  if (p.empty() || p[0] != '/') return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string_view part(p.data() + start, end - start);
    if (part == "..") return false;
    start = end + 1;
  }
  return true;
}

Status ValidateDisks(const TaskSpec& s) {
  if (s.root.device.empty() == s.root.directory.empty()) {
    return Error::InvalidArgument(
        "root: exactly one of root.device and root.directory must be set (device=\"" + s.root.device +
        "\", directory=\"" + s.root.directory + "\")");
  }
  if (!s.root.device.empty() && !IsAbsoluteClean(s.root.device)) {
    return Error::InvalidArgument("root.device: \"" + s.root.device + "\" is not an absolute path");
  }
  if (!s.root.directory.empty() && !IsAbsoluteClean(s.root.directory)) {
    return Error::InvalidArgument("root.directory: \"" + s.root.directory + "\" is not an absolute path");
  }
  if (!s.scratch.device.empty() && !IsAbsoluteClean(s.scratch.device)) {
    return Error::InvalidArgument("scratch.device: \"" + s.scratch.device + "\" is not an absolute path");
  }
  return Ok();
}

Status ValidateProcess(const TaskSpec& s) {
  if (s.process.stop_signal < 1 || s.process.stop_signal > 64) {
    return Error::InvalidArgument("process.stop_signal: " + std::to_string(s.process.stop_signal) +
                                  " is not a signal number");
  }
  if (!s.process.working_dir.empty() && s.process.working_dir[0] != '/') {
    return Error::InvalidArgument("process.working_dir: \"" + s.process.working_dir +
                                  "\" is not an absolute path");
  }
  for (const auto& [key, value] : s.process.env) {
    if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos) {
      return Error::InvalidArgument("process.env: \"" + key + "\" is not a valid variable name");
    }
  }
  for (size_t i = 0; i < s.image.env.size(); i++) {
    if (s.image.env[i].find('=') == std::string::npos || s.image.env[i][0] == '=') {
      return Error::InvalidArgument("image.env[" + std::to_string(i) + "]: \"" + s.image.env[i] +
                                    "\" is not KEY=value");
    }
  }
  return Ok();
}

Status ValidateMounts(const TaskSpec& s) {
  for (size_t i = 0; i < s.mounts.size(); i++) {
    const auto& m = s.mounts[i];
    std::string at = "mounts[" + std::to_string(i) + "]";
    if (!IsAbsoluteClean(m.target) || m.target == "/") {
      return Error::InvalidArgument(at + ".target: \"" + m.target +
                                    "\" must be an absolute path below / without ..");
    }
    if (m.fstype.empty()) return Error::InvalidArgument(at + ".fstype: missing");
  }
  for (size_t i = 0; i < s.devices.size(); i++) {
    const auto& d = s.devices[i];
    std::string at = "devices[" + std::to_string(i) + "]";
    if (d.source.rfind("/dev/", 0) != 0 || !IsAbsoluteClean(d.source))
      return Error::InvalidArgument(at + ".source: \"" + d.source + "\" is not a device path under /dev");
    if (!IsAbsoluteClean(d.target) || d.target == "/") {
      return Error::InvalidArgument(at + ".target: \"" + d.target +
                                    "\" must be an absolute path below / without ..");
    }
  }
  return Ok();
}

Status ValidateRlimits(const TaskSpec& s) {
  for (size_t i = 0; i < s.rlimits.size(); i++) {
    const auto& l = s.rlimits[i];
    std::string at = "rlimits[" + std::to_string(i) + "]";
    if (!KnownRlimits().count(l.name))
      return Error::InvalidArgument(at + ".name: \"" + l.name + "\" is not a known rlimit");
    if (l.soft > l.hard) {
      return Error::InvalidArgument(at + ": soft " + std::to_string(l.soft) + " is above hard " +
                                    std::to_string(l.hard));
    }
  }
  return Ok();
}

Status ValidateInterfaces(const TaskSpec& s) {
  for (size_t i = 0; i < s.network.interfaces.size(); i++) {
    const auto& itf = s.network.interfaces[i];
    if (itf.name.empty() && itf.mac.empty()) {
      return Error::InvalidArgument("network.interfaces[" + std::to_string(i) + "]: needs a name or a mac");
    }
    if (itf.name.size() >= 16) {
      return Error::InvalidArgument("network.interfaces[" + std::to_string(i) + "].name: \"" + itf.name +
                                    "\" is too long");
    }
  }
  for (size_t i = 0; i < s.network.forwards.size(); i++) {
    for (const auto& [field, value] : {std::pair{"listen", &s.network.forwards[i].listen},
                                       std::pair{"target", &s.network.forwards[i].target}}) {
      if (!IsIpv4Port(*value)) {
        return Error::InvalidArgument("network.forwards[" + std::to_string(i) + "]." + field + ": \"" +
                                      *value + "\" is not an IPv4 address and port");
      }
    }
  }
  return Ok();
}

Status ValidateControl(const TaskSpec& s) {
  if (s.control.log_buffer_bytes < uint64_t{64} * 1024 || s.control.log_buffer_bytes > (1ULL << 30)) {
    return Error::InvalidArgument("control.log_buffer_bytes: " + std::to_string(s.control.log_buffer_bytes) +
                                  " is outside 65536..1073741824");
  }
  if (!s.control.unix_socket.empty() && s.control.unix_socket.size() >= 108) {
    return Error::InvalidArgument("control.unix_socket: \"" + s.control.unix_socket +
                                  "\" is too long for a socket path");
  }
  if (s.control.serial_port.find('/') != std::string::npos) {
    return Error::InvalidArgument("control.serial_port: \"" + s.control.serial_port +
                                  "\" must be a port name, not a path");
  }
  return Ok();
}

}  // namespace

Status ValidateFiles(const TaskSpec& s) {
  std::set<std::string> names, paths;
  for (size_t i = 0; i < s.files.roots.size(); i++) {
    const FileRootConfig& f = s.files.roots[i];
    std::string where = "files.roots[" + std::to_string(i) + "]";
    bool name_ok =
        !f.name.empty() && f.name.size() <= 32 && std::all_of(f.name.begin(), f.name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        });
    if (!name_ok) return Error::InvalidArgument(where + ".name: \"" + f.name + "\" is not a root name");
    if (!IsAbsoluteClean(f.path) || f.path == "/")
      return Error::InvalidArgument(where + ".path: \"" + f.path + "\" is not an absolute path below /");
    if (!names.insert(f.name).second)
      return Error::InvalidArgument(where + ".name: \"" + f.name + "\" repeats");
    if (!paths.insert(f.path).second)
      return Error::InvalidArgument(where + ".path: \"" + f.path + "\" repeats");
  }
  return Ok();
}

Status ValidateTaskSpec(const TaskSpec& s) {
  if (s.version != kTaskSpecVersion)
    return Error::InvalidArgument("version: " + std::to_string(s.version) + " is not supported");
  NFC_RETURN_IF_ERROR(ValidateDisks(s));
  NFC_RETURN_IF_ERROR(ValidateProcess(s));
  if (s.hostname.size() > 64)
    return Error::InvalidArgument("hostname: \"" + s.hostname + "\" is longer than 64 bytes");
  NFC_RETURN_IF_ERROR(ValidateMounts(s));
  NFC_RETURN_IF_ERROR(ValidateRlimits(s));
  NFC_RETURN_IF_ERROR(ValidateInterfaces(s));
  NFC_RETURN_IF_ERROR(ValidateFiles(s));
  return ValidateControl(s);
}

}  // namespace nfc::guest
