#include "driver/rpc/services.h"

#include <cstdlib>
#include <string_view>

#include "base/log.h"
#include "driver/naming.h"
#include "driver/rpc/exec_stream.h"
#include "driver/rpc/spec_proto.h"
#include "driver/rpc/status.h"
#include "driver/rpc/task_proto.h"
#include "plugin/plugin_server.h"

namespace nfc::driver::rpc {
namespace {

namespace structspb = hashicorp::nomad::plugins::shared::structs;

void FingerprintToProto(const FingerprintResult& in, drvpb::FingerprintResponse* out) {
  switch (in.health) {
    case FingerprintResult::Health::kHealthy:
      out->set_health(drvpb::FingerprintResponse::HEALTHY);
      break;
    case FingerprintResult::Health::kUnhealthy:
      out->set_health(drvpb::FingerprintResponse::UNHEALTHY);
      break;
    case FingerprintResult::Health::kUndetected:
      out->set_health(drvpb::FingerprintResponse::UNDETECTED);
      break;
  }
  out->set_health_description(in.description);
  for (const auto& [key, value] : in.attributes) {
    structspb::Attribute& attr = (*out->mutable_attributes())[key];
    if (auto* s = std::get_if<std::string>(&value))
      attr.set_string_val(*s);
    else if (auto* i = std::get_if<int64_t>(&value))
      attr.set_int_val(*i);
    else if (auto* b = std::get_if<bool>(&value))
      attr.set_bool_val(*b);
    else if (auto* d = std::get_if<double>(&value))
      attr.set_float_val(*d);
  }
}

}  // namespace

grpc::Status BasePluginService::PluginInfo(grpc::ServerContext*, const basepb::PluginInfoRequest*,
                                           basepb::PluginInfoResponse* resp) {
  resp->set_type(basepb::DRIVER);
  resp->add_plugin_api_versions(std::string(kDriverApiVersion));
  resp->set_plugin_version(std::string(PluginVersion()));
  resp->set_name(driver_->name());
  return grpc::Status::OK;
}

grpc::Status BasePluginService::ConfigSchema(grpc::ServerContext*, const basepb::ConfigSchemaRequest*,
                                             basepb::ConfigSchemaResponse* resp) {
  SpecToProto(driver_->ConfigSchema(), resp->mutable_spec());
  return grpc::Status::OK;
}

grpc::Status BasePluginService::SetConfig(grpc::ServerContext*, const basepb::SetConfigRequest* req,
                                          basepb::SetConfigResponse*) {
  if (!req->plugin_api_version().empty() && req->plugin_api_version() != kDriverApiVersion &&
      req->plugin_api_version() != kDriverApiVersion.substr(1)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "plugin_api_version \"" + req->plugin_api_version() + "\" is not supported (only " +
                            std::string(kDriverApiVersion) + ")");
  }
  Status status = driver_->SetConfig(req->msgpack_config(), req->has_nomad_config());
  if (!status.ok()) {
    log::Error("rejected plugin config", {{"error", status.error().message()}});
    return ToGrpcStatus(status.error());
  }
  return grpc::Status::OK;
}

CancelledFn DriverService::CancelledFor(const grpc::ServerContext* ctx) const {
  return [ctx, stop = stop_] { return stop->triggered() || ctx->IsCancelled(); };
}

grpc::Status DriverService::TaskConfigSchema(grpc::ServerContext*, const drvpb::TaskConfigSchemaRequest*,
                                             drvpb::TaskConfigSchemaResponse* resp) {
  SpecToProto(driver_->TaskSchema(), resp->mutable_spec());
  return grpc::Status::OK;
}

grpc::Status DriverService::Capabilities(grpc::ServerContext*, const drvpb::CapabilitiesRequest*,
                                         drvpb::CapabilitiesResponse* resp) {
  const TaskManager::Capabilities caps = driver_->Capabilities();
  auto* out = resp->mutable_capabilities();
  out->set_send_signals(caps.send_signals);
  out->set_exec(caps.exec);
  // The guest's root file system is the task's image; Nomad must expose /alloc, /local, /secrets inside it.
  out->set_fs_isolation(drvpb::DriverCapabilities::IMAGE);
  if (caps.host_networking) out->add_network_isolation_modes(drvpb::NetworkIsolationSpec::HOST);
  if (caps.group_networking) out->add_network_isolation_modes(drvpb::NetworkIsolationSpec::GROUP);
  out->set_must_create_network(false);
  out->set_mount_configs(caps.mounts ? drvpb::DriverCapabilities::ANY_MOUNTS
                                     : drvpb::DriverCapabilities::NO_MOUNTS);
  out->set_disable_log_collection(false);
  out->set_dynamic_workload_users(false);
  return grpc::Status::OK;
}

grpc::Status DriverService::Fingerprint(grpc::ServerContext* ctx, const drvpb::FingerprintRequest*,
                                        grpc::ServerWriter<drvpb::FingerprintResponse>* writer) {
  // On Nomad before 2.0.4 (no Init RPC) the first Fingerprint is the first sign of the runtime instance.
  if (Status s = driver_->Init(); !s.ok()) log::Error("driver init failed", {{"error", s.error().message()}});
  FingerprintResult last;
  bool first = true;
  for (;;) {
    FingerprintResult current = driver_->Fingerprint();
    if (first || !(current == last)) {
      log::Debug("fingerprint", {{"health", current.description}});
    }
    drvpb::FingerprintResponse resp;
    FingerprintToProto(current, &resp);
    if (!writer->Write(resp)) return grpc::Status::OK;  // client went away
    last = std::move(current);
    first = false;
    if (stop_->WaitFor(ctx, fingerprint_period_) != plugin::StopSignal::Wake::kTimeout)
      return grpc::Status::OK;
  }
}

grpc::Status DriverService::TaskEvents(grpc::ServerContext* ctx, const drvpb::TaskEventsRequest*,
                                       grpc::ServerWriter<drvpb::DriverTaskEvent>* writer) {
  auto subscription = driver_->events().Subscribe();
  while (!stop_->triggered() && !ctx->IsCancelled()) {
    std::optional<TaskEvent> event = subscription->Next(plugin::StopSignal::kCancelPollInterval);
    if (!event) continue;
    drvpb::DriverTaskEvent out;
    EventToProto(*event, &out);
    if (!writer->Write(out)) break;
  }
  return grpc::Status::OK;
}

grpc::Status DriverService::StartTask(grpc::ServerContext*, const drvpb::StartTaskRequest* req,
                                      drvpb::StartTaskResponse* resp) {
  // Decoded once, here: a bad job fails with an error naming the option before anything else happens.
  const std::string& msgpack = req->task().msgpack_driver_config();
  if (msgpack.empty()) {
    return ToGrpcStatus(Error::InvalidArgument("task has no driver config (config { image = ... })"));
  }
  Result<TaskConfig> config = DecodeTaskConfigMsgpack(msgpack);
  if (!config.ok()) return ToGrpcStatus(config.error());
  Result<StartedTask> started = driver_->tasks().StartTask(TaskFromProto(req->task()), *config);
  if (!started.ok()) return ToGrpcStatusForStart(started.error());
  HandleToProto(started->handle, resp->mutable_handle());
  // The client persists the handle with the task as it sent it, driver config included.
  resp->mutable_handle()->mutable_config()->set_msgpack_driver_config(msgpack);
  if (started->network) NetworkOverrideToProto(*started->network, resp->mutable_network_override());
  return grpc::Status::OK;
}

grpc::Status DriverService::RecoverTask(grpc::ServerContext*, const drvpb::RecoverTaskRequest* req,
                                        drvpb::RecoverTaskResponse*) {
  Status s = driver_->tasks().RecoverTask(HandleFromProto(req->handle()));
  return s.ok() ? grpc::Status::OK : ToGrpcStatus(s.error());
}

grpc::Status DriverService::WaitTask(grpc::ServerContext* ctx, const drvpb::WaitTaskRequest* req,
                                     drvpb::WaitTaskResponse* resp) {
  Result<ExitResult> result = driver_->tasks().WaitTask(req->task_id(), CancelledFor(ctx));
  if (!result.ok()) return ToGrpcStatus(result.error());
  ExitResultToProto(*result, resp->mutable_result());
  resp->set_err(result->err);
  return grpc::Status::OK;
}

grpc::Status DriverService::StopTask(grpc::ServerContext*, const drvpb::StopTaskRequest* req,
                                     drvpb::StopTaskResponse*) {
  auto timeout =
      std::chrono::seconds(req->timeout().seconds()) + std::chrono::nanoseconds(req->timeout().nanos());
  Status s = driver_->tasks().StopTask(
      req->task_id(), std::chrono::duration_cast<std::chrono::milliseconds>(timeout), req->signal());
  return s.ok() ? grpc::Status::OK : ToGrpcStatus(s.error());
}

grpc::Status DriverService::DestroyTask(grpc::ServerContext*, const drvpb::DestroyTaskRequest* req,
                                        drvpb::DestroyTaskResponse*) {
  Status s = driver_->tasks().DestroyTask(req->task_id(), req->force());
  return s.ok() ? grpc::Status::OK : ToGrpcStatus(s.error());
}

grpc::Status DriverService::InspectTask(grpc::ServerContext*, const drvpb::InspectTaskRequest* req,
                                        drvpb::InspectTaskResponse* resp) {
  Result<TaskInspection> inspection = driver_->tasks().InspectTask(req->task_id());
  if (!inspection.ok()) return ToGrpcStatus(inspection.error());
  InspectionToProto(*inspection, resp);
  return grpc::Status::OK;
}

grpc::Status DriverService::TaskStats(grpc::ServerContext* ctx, const drvpb::TaskStatsRequest* req,
                                      grpc::ServerWriter<drvpb::TaskStatsResponse>* writer) {
  auto interval = std::chrono::seconds(req->collection_interval().seconds()) +
                  std::chrono::nanoseconds(req->collection_interval().nanos());
  auto interval_ms = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(interval),
                              std::chrono::milliseconds(100));
  Status s = driver_->tasks().StreamTaskStats(
      req->task_id(), interval_ms,
      [&](const TaskStatsSample& sample) {
        drvpb::TaskStatsResponse resp;
        StatsToProto(req->task_id(), sample, resp.mutable_stats());
        return writer->Write(resp);
      },
      CancelledFor(ctx));
  return s.ok() ? grpc::Status::OK : ToGrpcStatus(s.error());
}

grpc::Status DriverService::SignalTask(grpc::ServerContext*, const drvpb::SignalTaskRequest* req,
                                       drvpb::SignalTaskResponse*) {
  Status s = driver_->tasks().SignalTask(req->task_id(), req->signal());
  return s.ok() ? grpc::Status::OK : ToGrpcStatus(s.error());
}

grpc::Status DriverService::ExecTask(grpc::ServerContext*, const drvpb::ExecTaskRequest* req,
                                     drvpb::ExecTaskResponse* resp) {
  auto timeout =
      std::chrono::seconds(req->timeout().seconds()) + std::chrono::nanoseconds(req->timeout().nanos());
  Result<ExecOutput> out = driver_->tasks().ExecTask(
      req->task_id(), std::vector<std::string>(req->command().begin(), req->command().end()),
      std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  if (!out.ok()) return ToGrpcStatus(out.error());
  resp->set_stdout(out->stdout_data);
  resp->set_stderr(out->stderr_data);
  ExitResultToProto(out->result, resp->mutable_result());  // always set: the client dereferences it
  return grpc::Status::OK;
}

grpc::ServerBidiReactor<drvpb::ExecTaskStreamingRequest, drvpb::ExecTaskStreamingResponse>*
DriverService::ExecTaskStreaming(grpc::CallbackServerContext*) {
  return NewExecReactor(&driver_->tasks(), stop_);
}

grpc::Status DriverService::CreateNetwork(grpc::ServerContext*, const drvpb::CreateNetworkRequest*,
                                          drvpb::CreateNetworkResponse*) {
  // Only called when must_create_network is claimed, which this driver never does.
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "CreateNetwork: this driver joins the network namespace Nomad creates");
}

grpc::Status DriverService::DestroyNetwork(grpc::ServerContext*, const drvpb::DestroyNetworkRequest*,
                                           drvpb::DestroyNetworkResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "DestroyNetwork: this driver joins the network namespace Nomad creates");
}

grpc::Status DriverService::Init(grpc::ServerContext*, const drvpb::InitRequest*, drvpb::InitResponse*) {
  Status s = driver_->Init();
  return s.ok() ? grpc::Status::OK : ToGrpcStatus(s.error());
}

grpc::Status DriverService::Shutdown(grpc::ServerContext*, const drvpb::ShutdownRequest*,
                                     drvpb::ShutdownResponse*) {
  // Tasks must survive the plugin (their shims own them), so there is nothing to do before GRPCController's
  // kill.
  log::Debug("agent is shutting down gracefully; tasks keep running");
  return grpc::Status::OK;
}

int ServePlugin(int argc, char** argv, const TaskManagerFactory& make_tasks) {
  log::Level level = log::Level::kDebug;
  std::chrono::milliseconds fingerprint_period = DriverService::kFingerprintPeriod;
  for (int i = 1; i < argc; i++) {
    std::string_view arg = argv[i];
    constexpr std::string_view kLevelFlag = "--log-level=";
    constexpr std::string_view kPeriodFlag = "--fingerprint-period=";
    if (arg.substr(0, kLevelFlag.size()) == kLevelFlag) {
      level = log::ParseLevel(arg.substr(kLevelFlag.size()), level);
    } else if (arg.substr(0, kPeriodFlag.size()) == kPeriodFlag) {
      // Seconds, from the plugin block's `args`; bounded so a typo cannot make a busy loop.
      long seconds = std::strtol(std::string(arg.substr(kPeriodFlag.size())).c_str(), nullptr, 10);
      if (seconds >= 1 && seconds <= 3600) fingerprint_period = std::chrono::seconds(seconds);
    }
  }
  const std::string name = DriverNameFromPath(argc > 0 ? argv[0] : "");
  log::Configure(2, log::Format::kJson, level, name);

  plugin::PluginServer server;
  // The hub outlives the driver's services; the task manager gets a reference to publish events.
  TaskEventHub events;
  std::unique_ptr<TaskManager> tasks = make_tasks(events);
  Driver driver(name, std::move(tasks), &events);
  BasePluginService base(&driver);
  DriverService driver_service(&driver, &server.stop(), fingerprint_period);
  server.AddService(&base);
  server.AddService(&driver_service);
  return server.Run();
}

}  // namespace nfc::driver::rpc
