// Unix stream sockets and length-prefixed protobuf frames, as used by the shim's control protocol
// (control.proto): a 4-byte big-endian length, then the message. Frames above kMaxFrameBytes are refused, so
// a confused or hostile peer cannot make us allocate without bound.
#pragma once

#include <functional>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"
#include "base/unix_socket.h"  // ListenUnix, ConnectUnix: the sockets these frames travel on

namespace google::protobuf {
class MessageLite;
}

namespace nfc::shim {

inline constexpr size_t kMaxFrameBytes = 16u << 20;

// Writes one frame (handles partial writes, EINTR; never raises SIGPIPE).
Status WriteFrame(int fd, const google::protobuf::MessageLite& message);

// Reads one frame. timeout_ms < 0 waits forever; `cancelled`, if given, is polled about every 200 ms and ends
// the wait with kCancelled. A peer that closes before a frame starts gives kUnavailable "connection closed".
Status ReadFrame(int fd, google::protobuf::MessageLite* message, int timeout_ms = -1,
                 const std::function<bool()>& cancelled = nullptr);

}  // namespace nfc::shim
