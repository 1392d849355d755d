#include "plugin/plugin_server.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "plugin/go_plugin_services.h"

namespace nfc::plugin {
namespace {

// How long in-flight calls get to finish once we stop; then gRPC cancels them. go-plugin SIGKILLs after 2 s.
constexpr auto kDrainBudget = std::chrono::milliseconds(500);
// If an orderly stop has not finished by then, exit anyway: being SIGKILLed would leave the socket file
// behind.
constexpr auto kExitBackstop = std::chrono::milliseconds(1500);

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("write handshake to stdout");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

// Signals: SIGINT is ignored like go-plugin servers do (the agent's terminal Ctrl-C reaches our process group
// and the agent decides when we stop), SIGPIPE is ignored so a dead agent's broken stderr pipe cannot kill us
// (log writes see EPIPE instead), SIGTERM is blocked in every thread and collected by one thread as a stop
// request. Must run before any other thread starts so they inherit the mask.
Status SetUpSignals(sigset_t* collected) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  if (sigaction(SIGINT, &ignore, nullptr) != 0) return Error::Errno("ignore SIGINT");
  if (sigaction(SIGPIPE, &ignore, nullptr) != 0) return Error::Errno("ignore SIGPIPE");
  sigemptyset(collected);
  sigaddset(collected, SIGTERM);
  int rc = pthread_sigmask(SIG_BLOCK, collected, nullptr);
  if (rc != 0) return Error::Sys(rc, "block SIGTERM");
  return Ok();
}

// Turns a SIGTERM (blocked everywhere, see SetUpSignals) into a stop request, from its own thread. The
// destructor triggers the stop itself and joins the thread.
class SigtermWatcher {
 public:
  SigtermWatcher(const sigset_t& collected, StopSignal& stop)
      : stop_(stop), thread_([this, collected] { Watch(collected); }) {}
  ~SigtermWatcher() {
    stop_.Trigger();
    // Wake the thread's sigtimedwait now instead of at the end of its slice (SIGTERM is blocked everywhere
    // and in its wait set, so this only ends the wait).
    // NOLINTNEXTLINE(bugprone-bad-signal-to-kill-thread): SIGTERM is blocked there; this only wakes the wait.
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  SigtermWatcher(const SigtermWatcher&) = delete;
  SigtermWatcher& operator=(const SigtermWatcher&) = delete;

 private:
  void Watch(sigset_t collected) {
    const timespec slice{0, 200'000'000};
    while (!stop_.triggered()) {
      int sig = sigtimedwait(&collected, nullptr, &slice);
      if (sig == SIGTERM && !stop_.triggered()) {
        log::Info("received SIGTERM, stopping");
        stop_.Trigger();
      }
    }
  }

  StopSignal& stop_;
  std::thread thread_;
};

// If an orderly stop has not finished within kExitBackstop, removes the socket and exits the process. The
// destructor marks the stop finished.
class ExitBackstop {
 public:
  explicit ExitBackstop(std::string socket_path)
      : socket_path_(std::move(socket_path)), thread_([this] { Guard(); }) {}
  ~ExitBackstop() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ExitBackstop(const ExitBackstop&) = delete;
  ExitBackstop& operator=(const ExitBackstop&) = delete;

 private:
  void Guard() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kExitBackstop, [&] { return done_; })) {
      log::Warn("orderly stop took too long, exiting now");
      ::unlink(socket_path_.c_str());
      ::_exit(0);
    }
  }

  const std::string socket_path_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: it uses the members above
};

// A gRPC server on unix:<socket_path> with grpc.health.v1 saying "plugin" is SERVING; nullptr if it cannot
// start.
std::unique_ptr<grpc::Server> StartGrpcServer(const std::string& socket_path,
                                              const std::vector<grpc::Service*>& services) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server) server->GetHealthCheckService()->SetServingStatus("plugin", true);
  return server;
}

// The listener exists; now, and only now, tell the host where it is.
Status Announce(const EnvLookup& env, const std::string& socket_path) {
  NFC_RETURN_IF_ERROR(ApplySocketGroup(env, socket_path));
  return WriteAll(STDOUT_FILENO, HandshakeLine(socket_path));
}

// Stop replies first, then ends all streams within kDrainBudget and removes the socket.
void StopGracefully(grpc::Server& server, const std::string& socket_path) {
  const auto stop_started = std::chrono::steady_clock::now();
  {
    ExitBackstop backstop(socket_path);
    server.GetHealthCheckService()->SetServingStatus("plugin", false);
    server.Shutdown(std::chrono::system_clock::now() + kDrainBudget);
    server.Wait();
    if (::unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
      log::Warn("could not remove the plugin socket", {{"socket", socket_path}, {"error", strerror(errno)}});
    }
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stop_started);
  log::Debug("plugin server stopped", {{"took_ms", ms.count()}});
}

int StartFailed(const Error& error) {
  log::Error(error.message());
  return 1;
}

}  // namespace

int PluginServer::Run() {
  if (Status s = CheckHandshakeEnvironment(env_); !s.ok()) return StartFailed(s.error());
  sigset_t collected;
  if (Status s = SetUpSignals(&collected); !s.ok()) return StartFailed(s.error());
  SigtermWatcher sigterm(collected, stop_);

  Result<std::string> socket_path = ChooseSocketPath(env_);
  if (!socket_path.ok()) return StartFailed(socket_path.error());
  ControllerService controller(&stop_);
  StdioService stdio(&stop_);
  BrokerService broker(&stop_);
  std::vector<grpc::Service*> services = {&controller, &stdio, &broker};
  services.insert(services.end(), services_.begin(), services_.end());
  std::unique_ptr<grpc::Server> server = StartGrpcServer(*socket_path, services);
  if (!server) {
    log::Error("could not start the gRPC server on unix socket " + *socket_path);
    return 1;
  }
  if (Status s = Announce(env_, *socket_path); !s.ok()) {
    log::Error(s.error().message());
    server->Shutdown();
    ::unlink(socket_path->c_str());
    return 1;
  }
  log::Debug("plugin server listening", {{"socket", *socket_path}, {"pid", getpid()}});

  stop_.WaitUntilTriggered();
  StopGracefully(*server, *socket_path);
  return 0;
}

}  // namespace nfc::plugin
