// Registry manifests and indexes (untrusted: any registry answers): the first line of an input is the
// Content-Type, the rest the body. A parsed index goes through platform selection, a parsed image manifest's
// layers through the media type table.
#include <cstdint>

#include "fuzz_util.h"
#include "image/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = nfc::fuzz::AsText(data, size);
  std::string_view content_type = nfc::fuzz::TakeUntil(input, "\n");
  auto m = nfc::image::ParseManifest(input, content_type);
  if (!m.ok()) return 0;
  if (m->kind == nfc::image::ManifestKind::kIndex) {
    for (const char* arch : {"amd64", "arm64"}) {
      nfc::image::Platform want;
      want.architecture = arch;
      auto chosen = nfc::image::SelectPlatform(*m, want);
      if (chosen.ok()) NFC_FUZZ_CHECK(chosen->architecture == arch);
    }
  } else {
    for (const auto& layer : m->layers) (void)nfc::image::LayerCompression(layer.media_type);
  }
  (void)nfc::image::ParsePlatform(content_type);
  return 0;
}
