#include "base/error.h"

#include <cstring>

namespace nfc {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kAlreadyExists:
      return "already exists";
    case ErrorCode::kFailedPrecondition:
      return "failed precondition";
    case ErrorCode::kPermissionDenied:
      return "permission denied";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kResourceExhausted:
      return "resource exhausted";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kDataLoss:
      return "data loss";
    case ErrorCode::kUnimplemented:
      return "unimplemented";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

ErrorCode ErrorCodeFromName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); i++) {
    auto code = static_cast<ErrorCode>(i);
    if (ErrorCodeName(code) == name) return code;
  }
  return ErrorCode::kInternal;
}

static ErrorCode CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
      return ErrorCode::kNotFound;
    case EEXIST:
      return ErrorCode::kAlreadyExists;
    case EACCES:
    case EPERM:
      return ErrorCode::kPermissionDenied;
    case EINVAL:
      return ErrorCode::kInvalidArgument;
    case ETIMEDOUT:
      return ErrorCode::kTimeout;
    case ENOSPC:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return ErrorCode::kResourceExhausted;
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case EAGAIN:
      return ErrorCode::kUnavailable;
    case ECANCELED:
      return ErrorCode::kCancelled;
    default:
      return ErrorCode::kInternal;
  }
}

Error Error::Sys(int err, std::string_view what) {
  char buf[128];
  // GNU strerror_r returns the message pointer (possibly static), not an int.
  const char* text = strerror_r(err, buf, sizeof buf);
  Error e(CodeForErrno(err), std::string(what) + ": " + text);
  e.errno_ = err;
  return e;
}

Error& Error::Context(std::string_view context) & {
  message_ = std::string(context) + ": " + message_;
  return *this;
}

Error&& Error::Context(std::string_view context) && {
  message_ = std::string(context) + ": " + message_;
  return std::move(*this);
}

}  // namespace nfc
