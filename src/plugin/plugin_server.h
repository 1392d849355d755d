// PluginServer: the go-plugin server process of a Nomad plugin (reference nomad-plugin-protocol.md 1.3-1.9).
//
// Run() checks the handshake environment, ignores SIGINT and SIGPIPE, turns SIGTERM into a graceful stop,
// binds a fresh unix socket, starts one gRPC server with the caller's services plus grpc.health.v1 ("plugin"
// SERVING) and go-plugin's Controller/Stdio/Broker, prints the handshake line as the very first stdout
// output, and serves until GRPCController.Shutdown or SIGTERM. Clients may come and go (agent crash,
// reattach): only those two stop it. Stopping replies first, then ends all streams, removes the socket and
// returns well within go-plugin's 2 s grace.
//
// Usage (from the process's main thread, before any other thread exists):
//   PluginServer server;
//   MyService svc(&server.stop());
//   server.AddService(&svc);
//   return server.Run();
#pragma once

#include <functional>
#include <vector>

#include "plugin/handshake.h"
#include "plugin/stop_signal.h"

namespace grpc {
class Service;
}

namespace nfc::plugin {

class PluginServer {
 public:
  explicit PluginServer(EnvLookup env = ProcessEnv()) : env_(std::move(env)) {}
  PluginServer(const PluginServer&) = delete;
  PluginServer& operator=(const PluginServer&) = delete;

  // Services are not owned and must outlive Run().
  void AddService(grpc::Service* service) { services_.push_back(service); }
  // Long-lived handlers wait on this to notice the shutdown.
  StopSignal& stop() { return stop_; }

  // Returns the process exit code: 0 after an orderly stop, 1 if start-up failed (reason logged on stderr).
  int Run();

 private:
  EnvLookup env_;
  std::vector<grpc::Service*> services_;
  StopSignal stop_;
};

}  // namespace nfc::plugin
