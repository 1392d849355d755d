#include "driver/rpc/status.h"

#include <google/protobuf/any.pb.h>

#include "plugins/shared/structs/proto/recoverable_error.pb.h"

namespace nfc::driver::rpc {
namespace {

grpc::StatusCode CodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case ErrorCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorCode::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case ErrorCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    case ErrorCode::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kUnavailable:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorCode::kTimeout:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ErrorCode::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case ErrorCode::kDataLoss:
      return grpc::StatusCode::DATA_LOSS;
    case ErrorCode::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case ErrorCode::kInternal:
      return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::UNKNOWN;
}

// google.rpc.Status {code = 1, message = 2, details = 3 (Any)}, serialized by hand: protobuf's C++ runtime
// does not ship the google/rpc protos and the message is three fields.
void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void AppendBytesField(std::string* out, int field, const std::string& bytes) {
  AppendVarint(out, static_cast<uint64_t>(field) << 3 | 2);
  AppendVarint(out, bytes.size());
  out->append(bytes);
}

}  // namespace

grpc::Status ToGrpcStatus(const Error& error) {
  return grpc::Status(CodeFor(error.code()), error.message());
}

grpc::Status ToGrpcStatusForStart(const Error& error) {
  if (!IsTransient(error.code())) return ToGrpcStatus(error);
  hashicorp::nomad::plugins::shared::structs::RecoverableError recoverable;
  recoverable.set_recoverable(true);
  google::protobuf::Any any;
  any.PackFrom(recoverable);
  std::string status;
  AppendVarint(&status, 1 << 3 | 0);
  AppendVarint(&status, static_cast<uint64_t>(grpc::StatusCode::FAILED_PRECONDITION));
  AppendBytesField(&status, 2, error.message());
  AppendBytesField(&status, 3, any.SerializeAsString());
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, error.message(), status);
}

}  // namespace nfc::driver::rpc
