#include "shim/task_dir.h"

#include <cstdint>
#include <cstdio>
#include <vector>

namespace nfc::shim {
namespace {

std::string Sanitize(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    bool safe =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    out.push_back(safe ? c : '_');
  }
  return out;
}

std::string Hash16(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::string TaskDirName(std::string_view task_id) {
  // Short on purpose: unix socket paths inside the directory (the VMM's API/QMP socket) must stay under 108
  // bytes even below a deep data_dir.
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= task_id.size(); i++) {
    if (i == task_id.size() || task_id[i] == '/') {
      parts.push_back(task_id.substr(start, i - start));
      start = i + 1;
    }
  }
  std::string name;
  if (parts.size() == 3 && !parts[0].empty() && !parts[1].empty()) {
    // Nomad: "<alloc uuid>/<task name>/<random hex>" -> "<alloc uuid prefix>.<task name>.<hash>"
    name = Sanitize(parts[0], 8) + "." + Sanitize(parts[1], 24);
  } else {
    name = Sanitize(task_id, 32);
    if (name.empty()) name = "task";
  }
  // The hash of the whole id keeps distinct ids apart whatever was cut or replaced.
  return name + "." + Hash16(task_id);
}

}  // namespace nfc::shim
