// go-plugin's infrastructure services (package `plugin`) as a Nomad client expects them (reference 1.7):
//   GRPCController.Shutdown  reply, then make the process stop (the host SIGKILLs us 2 s later otherwise);
//   GRPCStdio.StreamStdio    we never forward stdio: the stream stays open until the client or the server
//   ends it; GRPCBroker.StartStream   Nomad drivers never broker connections: same.
#pragma once

#include "goplugin/grpc_broker.grpc.pb.h"
#include "goplugin/grpc_controller.grpc.pb.h"
#include "goplugin/grpc_stdio.grpc.pb.h"
#include "plugin/stop_signal.h"

namespace nfc::plugin {

class ControllerService final : public ::plugin::GRPCController::Service {
 public:
  explicit ControllerService(StopSignal* stop) : stop_(stop) {}
  grpc::Status Shutdown(grpc::ServerContext* ctx, const ::plugin::Empty* req, ::plugin::Empty* resp) override;

 private:
  StopSignal* stop_;
};

class StdioService final : public ::plugin::GRPCStdio::Service {
 public:
  explicit StdioService(const StopSignal* stop) : stop_(stop) {}
  grpc::Status StreamStdio(grpc::ServerContext* ctx, const google::protobuf::Empty* req,
                           grpc::ServerWriter<::plugin::StdioData>* writer) override;

 private:
  const StopSignal* stop_;
};

class BrokerService final : public ::plugin::GRPCBroker::Service {
 public:
  explicit BrokerService(const StopSignal* stop) : stop_(stop) {}
  grpc::Status StartStream(grpc::ServerContext* ctx,
                           grpc::ServerReaderWriter<::plugin::ConnInfo, ::plugin::ConnInfo>* stream) override;

 private:
  const StopSignal* stop_;
};

}  // namespace nfc::plugin
