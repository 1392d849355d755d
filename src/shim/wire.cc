#include "shim/wire.h"

#include <google/protobuf/message_lite.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace nfc::shim {
namespace {

using Clock = std::chrono::steady_clock;

// Waits until fd is readable. Returns kTimeout / kCancelled accordingly.
Status WaitReadable(int fd, Clock::time_point deadline, bool has_deadline,
                    const std::function<bool()>& cancelled) {
  for (;;) {
    if (cancelled && cancelled()) return Error(ErrorCode::kCancelled, "cancelled");
    int slice = 200;
    if (has_deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Error::Timeout("timed out waiting for the peer");
      if (left < slice) slice = static_cast<int>(left);
    } else if (!cancelled) {
      slice = -1;
    }
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, slice);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("poll");
    }
    if (r > 0) return Ok();
  }
}

Status ReadFull(int fd, char* buf, size_t size, bool at_frame_start, Clock::time_point deadline,
                bool has_deadline, const std::function<bool()>& cancelled) {
  size_t done = 0;
  while (done < size) {
    NFC_RETURN_IF_ERROR(WaitReadable(fd, deadline, has_deadline, cancelled));
    ssize_t n = ::read(fd, buf + done, size - done);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error::Errno("read frame");
    }
    if (n == 0) {
      if (at_frame_start && done == 0) return Error::Unavailable("connection closed");
      return Error::DataLoss("connection closed in the middle of a frame");
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

}  // namespace

Status WriteFrame(int fd, const google::protobuf::MessageLite& message) {
  size_t size = message.ByteSizeLong();
  if (size > kMaxFrameBytes)
    return Error::InvalidArgument("frame of " + std::to_string(size) + " bytes is too large");
  std::string buf(4 + size, '\0');
  buf[0] = static_cast<char>((size >> 24) & 0xff);
  buf[1] = static_cast<char>((size >> 16) & 0xff);
  buf[2] = static_cast<char>((size >> 8) & 0xff);
  buf[3] = static_cast<char>(size & 0xff);
  if (!message.SerializeToArray(buf.data() + 4, static_cast<int>(size)))
    return Error::Internal("serialize frame");
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::send(fd, buf.data() + done, buf.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        ::poll(&pfd, 1, 1000);
        continue;
      }
      return Error::Errno("write frame");
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Status ReadFrame(int fd, google::protobuf::MessageLite* message, int timeout_ms,
                 const std::function<bool()>& cancelled) {
  bool has_deadline = timeout_ms >= 0;
  auto deadline = Clock::now() + std::chrono::milliseconds(has_deadline ? timeout_ms : 0);
  unsigned char len[4];
  NFC_RETURN_IF_ERROR(ReadFull(fd, reinterpret_cast<char*>(len), 4, true, deadline, has_deadline, cancelled));
  size_t size = (size_t{len[0]} << 24) | (size_t{len[1]} << 16) | (size_t{len[2]} << 8) | size_t{len[3]};
  if (size > kMaxFrameBytes) {
    return Error::InvalidArgument("peer sent a frame of " + std::to_string(size) + " bytes (limit " +
                                  std::to_string(kMaxFrameBytes) + ")");
  }
  std::string buf(size, '\0');
  NFC_RETURN_IF_ERROR(ReadFull(fd, buf.data(), size, false, deadline, has_deadline, cancelled));
  if (!message->ParseFromString(buf)) return Error::DataLoss("malformed frame from peer");
  return Ok();
}

}  // namespace nfc::shim
