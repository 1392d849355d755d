#include "shim/task_dir.h"

#include <cstdint>
#include <cstdio>

namespace nfc::shim {

std::string TaskDirName(std::string_view task_id) {
  std::string name;
  name.reserve(task_id.size());
  for (char c : task_id) {
    bool safe =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (c == '/')
      name.push_back('.');
    else if (safe || c == '.')
      name.push_back(c);
    else
      name.push_back('_');
  }
  // "." and ".." (and names starting with a dot) would be special or hidden.
  if (name.empty() || name[0] == '.') name.insert(name.begin(), 't');
  constexpr size_t kMax = 100;
  if (name.size() > kMax || name != task_id) {
    // Mapping is not injective once characters were replaced or cut: add a hash of the original id.
    uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
    for (unsigned char c : task_id) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    char suffix[18];
    std::snprintf(suffix, sizeof suffix, "-%016llx", static_cast<unsigned long long>(h));
    if (name.size() > kMax) name.resize(kMax);
    name += suffix;
  }
  return name;
}

}  // namespace nfc::shim
