#include "driver/naming.h"

namespace nfc::driver {

std::string DriverNameFromPath(std::string_view argv0) {
  std::string_view name = argv0;
  if (size_t slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  if (name.size() > 4 && name.substr(name.size() - 4) == ".exe") name.remove_suffix(4);
  constexpr std::string_view kPrefix = "nomad-driver-";
  if (name.substr(0, kPrefix.size()) == kPrefix) name.remove_prefix(kPrefix.size());
  if (name.empty()) return std::string(kDefaultDriverName);
  return std::string(name);
}

}  // namespace nfc::driver
