// Unix stream sockets and length-prefixed protobuf frames, as used by the shim's control protocol
// (control.proto): a 4-byte big-endian length, then the message. Frames above kMaxFrameBytes are refused, so
// a confused or hostile peer cannot make us allocate without bound.
#pragma once

#include <functional>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace google::protobuf {
class MessageLite;
}

namespace nfc::shim {

inline constexpr size_t kMaxFrameBytes = 16u << 20;

// Binds and listens on `path` (relative paths resolve against the cwd), replacing a stale socket file left by
// a dead process. Refuses to replace anything that is not a socket. The socket file gets mode 0600.
Result<UniqueFd> ListenUnix(const std::string& path, int backlog = 16);

// Connects to the socket at `path`. Paths longer than sun_path (108 bytes; data dirs can be deep) are reached
// through an O_PATH descriptor of the directory and /proc/self/fd.
Result<UniqueFd> ConnectUnix(const std::string& path);

// Writes one frame (handles partial writes, EINTR; never raises SIGPIPE).
Status WriteFrame(int fd, const google::protobuf::MessageLite& message);

// Reads one frame. timeout_ms < 0 waits forever; `cancelled`, if given, is polled about every 200 ms and ends
// the wait with kCancelled. A peer that closes before a frame starts gives kUnavailable "connection closed".
Status ReadFrame(int fd, google::protobuf::MessageLite* message, int timeout_ms = -1,
                 const std::function<bool()>& cancelled = nullptr);

}  // namespace nfc::shim
