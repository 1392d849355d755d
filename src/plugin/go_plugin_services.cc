#include "plugin/go_plugin_services.h"

#include "base/log.h"

namespace nfc::plugin {

grpc::Status ControllerService::Shutdown(grpc::ServerContext*, const ::plugin::Empty*, ::plugin::Empty*) {
  log::Debug("plugin host asked us to exit (GRPCController.Shutdown)");
  // Only flag it: the server's own shutdown waits for this call, so it must run elsewhere
  // (PluginServer::Run).
  stop_->Trigger();
  return grpc::Status::OK;
}

grpc::Status StdioService::StreamStdio(grpc::ServerContext* ctx, const google::protobuf::Empty*,
                                       grpc::ServerWriter<::plugin::StdioData>*) {
  stop_->WaitUntilDone(ctx);
  return grpc::Status::OK;
}

grpc::Status BrokerService::StartStream(grpc::ServerContext* ctx,
                                        grpc::ServerReaderWriter<::plugin::ConnInfo, ::plugin::ConnInfo>*) {
  // Whatever the host sends stays unread in flow-control buffers; we broker nothing.
  stop_->WaitUntilDone(ctx);
  return grpc::Status::OK;
}

}  // namespace nfc::plugin
