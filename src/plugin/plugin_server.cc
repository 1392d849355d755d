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
#include <memory>
#include <mutex>
#include <thread>

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

}  // namespace

int PluginServer::Run() {
  if (Status s = CheckHandshakeEnvironment(env_); !s.ok()) {
    log::Error(s.error().message());
    return 1;
  }
  sigset_t collected;
  if (Status s = SetUpSignals(&collected); !s.ok()) {
    log::Error(s.error().message());
    return 1;
  }
  std::thread signal_thread([this, collected] {
    const timespec slice{0, 200'000'000};
    while (!stop_.triggered()) {
      int sig = sigtimedwait(&collected, nullptr, &slice);
      if (sig == SIGTERM && !stop_.triggered()) {
        log::Info("received SIGTERM, stopping");
        stop_.Trigger();
      }
    }
  });
  struct JoinOnExit {
    std::thread& t;
    StopSignal& stop;
    ~JoinOnExit() {
      stop.Trigger();
      // Wake the thread's sigtimedwait now instead of at the end of its slice (SIGTERM is blocked everywhere
      // and in its wait set, so this only ends the wait).
      pthread_kill(t.native_handle(), SIGTERM);
      t.join();
    }
  } join_signal_thread{signal_thread, stop_};

  Result<std::string> socket_path = ChooseSocketPath(env_);
  if (!socket_path.ok()) {
    log::Error(socket_path.error().message());
    return 1;
  }

  ControllerService controller(&stop_);
  StdioService stdio(&stop_);
  BrokerService broker(&stop_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + *socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&controller);
  builder.RegisterService(&stdio);
  builder.RegisterService(&broker);
  for (grpc::Service* service : services_) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    log::Error("could not start the gRPC server on unix socket " + *socket_path);
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus("plugin", true);
  if (Status s = ApplySocketGroup(env_, *socket_path); !s.ok()) {
    log::Error(s.error().message());
    server->Shutdown();
    ::unlink(socket_path->c_str());
    return 1;
  }

  // The listener exists; now, and only now, tell the host where it is.
  if (Status s = WriteAll(STDOUT_FILENO, HandshakeLine(*socket_path)); !s.ok()) {
    log::Error(s.error().message());
    server->Shutdown();
    ::unlink(socket_path->c_str());
    return 1;
  }
  log::Debug("plugin server listening", {{"socket", *socket_path}, {"pid", getpid()}});

  stop_.WaitUntilTriggered();
  const auto stop_started = std::chrono::steady_clock::now();

  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::thread backstop([&] {
    std::unique_lock lock(done_mu);
    if (!done_cv.wait_for(lock, kExitBackstop, [&] { return done; })) {
      log::Warn("orderly stop took too long, exiting now");
      ::unlink(socket_path->c_str());
      ::_exit(0);
    }
  });

  server->GetHealthCheckService()->SetServingStatus("plugin", false);
  server->Shutdown(std::chrono::system_clock::now() + kDrainBudget);
  server->Wait();
  if (::unlink(socket_path->c_str()) != 0 && errno != ENOENT) {
    log::Warn("could not remove the plugin socket", {{"socket", *socket_path}, {"error", strerror(errno)}});
  }
  {
    std::lock_guard lock(done_mu);
    done = true;
  }
  done_cv.notify_all();
  backstop.join();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stop_started);
  log::Debug("plugin server stopped", {{"took_ms", static_cast<long long>(ms.count())}});
  return 0;
}

}  // namespace nfc::plugin
