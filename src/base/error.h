// Error: the one error type of the project, and Result<T>, the value-or-error every fallible call returns.
//
// An Error is created where something fails (at the syscall, with errno and the path or value involved) and
// gains context as it propagates ("start task web-1: pull alpine:3: GET /v2/...: 401 Unauthorized"). It is
// mapped to a gRPC status, an exit code or a wire message only at the boundary that owns that representation.
// No exceptions cross module, thread or process boundaries.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace nfc {

enum class ErrorCode {
  kInvalidArgument,     // bad input from a user or peer: names the field and value
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       //
  kFailedPrecondition,  // the operation is illegal in the current state (state named in the message)
  kPermissionDenied,    //
  kUnauthenticated,     // credentials missing or refused
  kResourceExhausted,   // limits, quotas, rate limits
  kUnavailable,         // transient: a peer or service is temporarily unreachable; retrying may help
  kTimeout,             //
  kCancelled,           //
  kDataLoss,            // corruption: digest mismatch, truncated data
  kUnimplemented,       //
  kInternal,            // a bug or an unexpected system failure
};

std::string_view ErrorCodeName(ErrorCode code);
// The inverse of ErrorCodeName, for codes carried by name across a process boundary (names survive new codes
// being added; ordinals do not). Unknown names are kInternal.
ErrorCode ErrorCodeFromName(std::string_view name);
// Whether trying the same operation again later may succeed: a peer unavailable, a timeout, a limit that may
// lift (a rate limit, a full disk). StartTask reports such failures to Nomad as recoverable, so the job's
// restart policy retries them; everything else fails the task for good.
constexpr bool IsTransient(ErrorCode code) {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kTimeout ||
         code == ErrorCode::kResourceExhausted;
}

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  // A failed system call: "<what>: <strerror(err)>". The code is derived from errno.
  static Error Sys(int err, std::string_view what);
  // Convenience for the call that just failed.
  static Error Errno(std::string_view what) { return Sys(errno, what); }

  static Error InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
  static Error NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error FailedPrecondition(std::string m) { return {ErrorCode::kFailedPrecondition, std::move(m)}; }
  static Error Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
  static Error Timeout(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }
  static Error DataLoss(std::string m) { return {ErrorCode::kDataLoss, std::move(m)}; }
  static Error Unimplemented(std::string m) { return {ErrorCode::kUnimplemented, std::move(m)}; }

  // Prepends context: Error::Sys(ENOENT, "open /x").Context("load config") -> "load config: open /x: ...".
  Error& Context(std::string_view context) &;
  Error&& Context(std::string_view context) &&;

  ErrorCode code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return message_; }

 private:
  ErrorCode code_;
  int errno_ = 0;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error)
      : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_{ErrorCode::kInternal, ""};
  bool ok_ = true;
};

using Status = Result<void>;
inline Status Ok() {
  return {};
}

}  // namespace nfc

#define NFC_CONCAT_INNER(a, b) a##b
#define NFC_CONCAT(a, b) NFC_CONCAT_INNER(a, b)

// Returns the error of a Status/Result expression from the enclosing function.
#define NFC_RETURN_IF_ERROR(expr)                                 \
  do {                                                            \
    auto nfc_status_ = (expr);                                    \
    if (!nfc_status_.ok()) return std::move(nfc_status_).error(); \
  } while (0)

// Like NFC_RETURN_IF_ERROR, adding context to the error.
#define NFC_RETURN_IF_ERROR_CTX(expr, ctx)                                     \
  do {                                                                         \
    auto nfc_status_ = (expr);                                                 \
    if (!nfc_status_.ok()) return std::move(nfc_status_).error().Context(ctx); \
  } while (0)

// NFC_ASSIGN_OR_RETURN(auto fd, OpenFile(path)); declares/assigns lhs or returns the error.
#define NFC_ASSIGN_OR_RETURN(lhs, expr) \
  NFC_ASSIGN_OR_RETURN_IMPL(NFC_CONCAT(nfc_result_, __LINE__), lhs, expr)
// `lhs` may be a declaration ("auto fd") and `tmp` names a variable, so neither can be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define NFC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).error();   \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
