// Mapping nfc::Error to gRPC status, the one place that decides what the Nomad client sees (reference 2.6).
#pragma once

#include <grpcpp/support/status.h>

#include "base/error.h"

namespace nfc::driver::rpc {

// Plain mapping for most calls. kUnavailable is deliberately NOT gRPC UNAVAILABLE: the Nomad client reads
// that as "the plugin process is going away" and treats it as a crash.
grpc::Status ToGrpcStatus(const Error& error);

// For StartTask: transient errors (kUnavailable, kTimeout, kResourceExhausted) become FAILED_PRECONDITION
// with a RecoverableError{recoverable: true} detail in google.rpc.Status, so the job's restart policy retries
// them.
grpc::Status ToGrpcStatusForStart(const Error& error);

}  // namespace nfc::driver::rpc
