// Length-prefixed framing for the guest control channel, self-synchronising so it survives byte streams that
// drop data (a virtio-serial port whose host side disconnects mid-frame).
//
// Frame = header (16 bytes, little-endian) + payload (one serialized HostMessage or GuestMessage):
//   magic "NFG1" | u32 payload length | u32 CRC-32 of payload | u32 CRC-32 of the first 12 header bytes
// A decoder that meets anything but a valid header (bad magic, bad header CRC, length above the limit) or a
// payload with a bad CRC skips one byte and scans for the next magic, counting the bytes it discarded. A
// partial frame that stays incomplete past a deadline is abandoned the same way (DropStalePartial), so a
// truncated frame's claimed length cannot swallow the frames that follow a reconnect.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nfc::guest {

inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr uint32_t kMaxFramePayload = 1 << 20;
inline constexpr char kFrameMagic[4] = {'N', 'F', 'G', '1'};

// Appends one frame holding payload to out. payload.size() must be <= kMaxFramePayload.
void AppendFrame(std::string& out, std::string_view payload);

class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_payload = kMaxFramePayload) : max_payload_(max_payload) {}

  void Feed(const char* data, size_t n) { buffer_.append(data, n); }
  // The next complete, valid payload, or nullopt when more bytes are needed.
  std::optional<std::string> Next();
  // True while the buffer holds the start of a frame that is not complete yet.
  bool HasPartial() const { return !buffer_.empty(); }
  // Gives up on the partial frame at the front (its rest was lost): skips its magic and rescans.
  void DropStalePartial();
  void Reset() { buffer_.clear(); }
  // Bytes thrown away while resynchronising, since construction.
  uint64_t discarded_bytes() const { return discarded_; }

 private:
  void Discard(size_t n);

  uint32_t max_payload_;
  std::string buffer_;
  uint64_t discarded_ = 0;
};

uint32_t Crc32(std::string_view data);

}  // namespace nfc::guest
