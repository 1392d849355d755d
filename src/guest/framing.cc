#include "guest/framing.h"

#include <zlib.h>

#include <cstring>

namespace nfc::guest {
namespace {

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace

uint32_t Crc32(std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths; frames are at most 1 MiB so one call suffices, but stay correct for any size.
  while (!data.empty()) {
    uInt n = static_cast<uInt>(std::min<size_t>(data.size(), 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), n);
    data.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

void AppendFrame(std::string& out, std::string_view payload) {
  char header[kFrameHeaderSize];
  std::memcpy(header, kFrameMagic, 4);
  PutU32(header + 4, static_cast<uint32_t>(payload.size()));
  PutU32(header + 8, Crc32(payload));
  PutU32(header + 12, Crc32(std::string_view(header, 12)));
  out.append(header, kFrameHeaderSize);
  out.append(payload);
}

void FrameDecoder::Discard(size_t n) {
  buffer_.erase(0, n);
  discarded_ += n;
}

void FrameDecoder::DropStalePartial() {
  if (buffer_.empty()) return;
  Discard(1);
}

std::optional<std::string> FrameDecoder::Next() {
  for (;;) {
    // Align on a magic; keep a trailing partial magic for the next Feed.
    size_t at = 0;
    while (at < buffer_.size()) {
      size_t avail = std::min<size_t>(4, buffer_.size() - at);
      if (std::memcmp(buffer_.data() + at, kFrameMagic, avail) == 0) break;
      at++;
    }
    if (at > 0) Discard(at);
    if (buffer_.size() < kFrameHeaderSize) return std::nullopt;
    const char* h = buffer_.data();
    uint32_t length = GetU32(h + 4);
    if (GetU32(h + 12) != Crc32(std::string_view(h, 12)) || length > max_payload_) {
      Discard(1);
      continue;
    }
    if (buffer_.size() < kFrameHeaderSize + length) return std::nullopt;
    std::string_view payload(buffer_.data() + kFrameHeaderSize, length);
    if (Crc32(payload) != GetU32(h + 8)) {
      Discard(1);
      continue;
    }
    std::string result(payload);
    buffer_.erase(0, kFrameHeaderSize + length);
    return result;
  }
}

}  // namespace nfc::guest
