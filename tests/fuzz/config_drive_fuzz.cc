// A config drive's bytes are the machine owner's (or a cloud's) and reach NomadOS's PID 1: the filesystem
// label probe over a device's first 64 KiB, and the meta-data parser. Properties: a probed label fits its
// field (11 bytes FAT, 32 ISO 9660); an accepted hostname passes ValidHostname.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "init/host/config_drive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto fs = nfc::init::host::ProbeFilesystem(bytes)) {
    NFC_FUZZ_CHECK(fs->label.size() <= (fs->type == "vfat" ? 11u : 32u));
  }
  auto m = nfc::init::host::ParseMetaData(bytes);
  if (m.ok() && !m->data.hostname.empty()) NFC_FUZZ_CHECK(nfc::init::host::ValidHostname(m->data.hostname));
  return 0;
}
