// The gRPC face of the driver: BasePlugin and Driver services over a driver::Driver, and ServePlugin(), which
// runs them on a go-plugin PluginServer. Handlers only translate: protobuf in, Driver/TaskManager call,
// protobuf or status out (errors via rpc/status.h). Long-lived streams (Fingerprint, TaskEvents, WaitTask,
// TaskStats) end when the client cancels or the plugin stops.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "driver/driver.h"
#include "plugin/stop_signal.h"
#include "plugins/base/proto/base.grpc.pb.h"
#include "plugins/drivers/proto/driver.grpc.pb.h"

namespace nfc::driver::rpc {

namespace basepb = hashicorp::nomad::plugins::base::proto;
namespace drvpb = hashicorp::nomad::plugins::drivers::proto;

class BasePluginService final : public basepb::BasePlugin::Service {
 public:
  explicit BasePluginService(Driver* driver) : driver_(driver) {}
  grpc::Status PluginInfo(grpc::ServerContext*, const basepb::PluginInfoRequest*,
                          basepb::PluginInfoResponse*) override;
  grpc::Status ConfigSchema(grpc::ServerContext*, const basepb::ConfigSchemaRequest*,
                            basepb::ConfigSchemaResponse*) override;
  grpc::Status SetConfig(grpc::ServerContext*, const basepb::SetConfigRequest*,
                         basepb::SetConfigResponse*) override;

 private:
  Driver* driver_;
};

// ExecTaskStreaming uses the callback API (rpc/exec_stream.h); every other method is synchronous.
class DriverService final
    : public drvpb::Driver::WithCallbackMethod_ExecTaskStreaming<drvpb::Driver::Service> {
 public:
  // Nomad's built-in drivers re-fingerprint every 30 s.
  static constexpr std::chrono::seconds kFingerprintPeriod{30};

  DriverService(Driver* driver, const plugin::StopSignal* stop,
                std::chrono::milliseconds fingerprint_period = kFingerprintPeriod)
      : driver_(driver), stop_(stop), fingerprint_period_(fingerprint_period) {}

  grpc::Status TaskConfigSchema(grpc::ServerContext*, const drvpb::TaskConfigSchemaRequest*,
                                drvpb::TaskConfigSchemaResponse*) override;
  grpc::Status Capabilities(grpc::ServerContext*, const drvpb::CapabilitiesRequest*,
                            drvpb::CapabilitiesResponse*) override;
  grpc::Status Fingerprint(grpc::ServerContext*, const drvpb::FingerprintRequest*,
                           grpc::ServerWriter<drvpb::FingerprintResponse>*) override;
  grpc::Status RecoverTask(grpc::ServerContext*, const drvpb::RecoverTaskRequest*,
                           drvpb::RecoverTaskResponse*) override;
  grpc::Status StartTask(grpc::ServerContext*, const drvpb::StartTaskRequest*,
                         drvpb::StartTaskResponse*) override;
  grpc::Status WaitTask(grpc::ServerContext*, const drvpb::WaitTaskRequest*,
                        drvpb::WaitTaskResponse*) override;
  grpc::Status StopTask(grpc::ServerContext*, const drvpb::StopTaskRequest*,
                        drvpb::StopTaskResponse*) override;
  grpc::Status DestroyTask(grpc::ServerContext*, const drvpb::DestroyTaskRequest*,
                           drvpb::DestroyTaskResponse*) override;
  grpc::Status InspectTask(grpc::ServerContext*, const drvpb::InspectTaskRequest*,
                           drvpb::InspectTaskResponse*) override;
  grpc::Status TaskStats(grpc::ServerContext*, const drvpb::TaskStatsRequest*,
                         grpc::ServerWriter<drvpb::TaskStatsResponse>*) override;
  grpc::Status TaskEvents(grpc::ServerContext*, const drvpb::TaskEventsRequest*,
                          grpc::ServerWriter<drvpb::DriverTaskEvent>*) override;
  grpc::Status SignalTask(grpc::ServerContext*, const drvpb::SignalTaskRequest*,
                          drvpb::SignalTaskResponse*) override;
  grpc::Status ExecTask(grpc::ServerContext*, const drvpb::ExecTaskRequest*,
                        drvpb::ExecTaskResponse*) override;
  grpc::ServerBidiReactor<drvpb::ExecTaskStreamingRequest, drvpb::ExecTaskStreamingResponse>*
  ExecTaskStreaming(grpc::CallbackServerContext*) override;
  grpc::Status CreateNetwork(grpc::ServerContext*, const drvpb::CreateNetworkRequest*,
                             drvpb::CreateNetworkResponse*) override;
  grpc::Status DestroyNetwork(grpc::ServerContext*, const drvpb::DestroyNetworkRequest*,
                              drvpb::DestroyNetworkResponse*) override;
  grpc::Status Init(grpc::ServerContext*, const drvpb::InitRequest*, drvpb::InitResponse*) override;
  grpc::Status Shutdown(grpc::ServerContext*, const drvpb::ShutdownRequest*,
                        drvpb::ShutdownResponse*) override;

 private:
  CancelledFn CancelledFor(const grpc::ServerContext* ctx) const;

  Driver* driver_;
  const plugin::StopSignal* stop_;
  std::chrono::milliseconds fingerprint_period_;
};

// Builds the TaskManager the driver delegates the task lifecycle to; it publishes task events on `events`.
using TaskManagerFactory = std::function<std::unique_ptr<TaskManager>(TaskEventHub& events)>;

// Runs the plugin process: builds the Driver (name from argv[0]) with the factory's TaskManager, registers
// the services on a PluginServer and serves until the host stops us. `argv` may carry "--log-level=<level>"
// and "--fingerprint-period=<seconds>" (the plugin block's `args`). Returns the exit code. Call from main
// before any thread exists.
int ServePlugin(int argc, char** argv, const TaskManagerFactory& make_tasks);

}  // namespace nfc::driver::rpc
