// ExecTaskStreaming as a gRPC callback reactor (reference section 6).
//
// The Nomad v2.0.5 client never half-closes its side of this stream, so a synchronous handler would have a
// reader thread blocked in Read() that nothing can release without cancelling the call (and losing the final
// frames). The callback API reads asynchronously instead: client frames are handled as they arrive, one pump
// thread pulls the session's output, and the call is finished with OK right after the separate `exited` frame
// is written.
#pragma once

#include <grpcpp/support/server_callback.h>

#include "driver/task_manager.h"
#include "plugin/stop_signal.h"
#include "plugins/drivers/proto/driver.pb.h"

namespace nfc::driver::rpc {

using ExecReactor =
    grpc::ServerBidiReactor<hashicorp::nomad::plugins::drivers::proto::ExecTaskStreamingRequest,
                            hashicorp::nomad::plugins::drivers::proto::ExecTaskStreamingResponse>;

// Returns a self-deleting reactor serving one ExecTaskStreaming call.
ExecReactor* NewExecReactor(TaskManager* tasks, const plugin::StopSignal* stop);

}  // namespace nfc::driver::rpc
