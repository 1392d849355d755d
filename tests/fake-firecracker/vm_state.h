// VmState: the stand-in's microVM as Firecracker's API sees it, behind its HTTP server (fake_firecracker.cc):
// Firecracker's state rules (pre-boot and post-boot requests, the one-shot logger, metrics and InstanceStart,
// a snapshot load only on a fresh process) and the effect of every request whose body already matched the
// spec: the configuration GET /vm/config shows, the sinks, the booted GuestMachine (--boot-qemu), the vsock
// listener, pause, snapshots (snapshot.h).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "api_spec.h"
#include "guest_machine.h"
#include "options.h"
#include "sinks.h"

namespace nfc::fakefc {

// One answer: its status, its JSON body (empty for 204) and what the fake noted for the record.
struct Reply {
  int status = 204;
  std::string body;
  nlohmann::json note = nlohmann::json::object();
};

inline std::string Fault(const std::string& message) {
  return nlohmann::json{{"fault_message", message}}.dump();
}
inline Reply Refuse(const std::string& message) {
  return {400, Fault(message)};
}
inline Reply Json(const nlohmann::json& j) {
  return {200, j.dump()};
}

// A non-blocking listening unix socket at `path`; -1 with `err` set ("<strerror> (os error N)").
int Listen(const std::string& path, std::string* err);

class VmState {
 public:
  VmState(const Options& options, const ApiSpec& spec, Sinks& sinks)
      : o_(options), spec_(spec), sinks_(sinks) {}

  // A request whose body matched the spec, by method and path template.
  Reply Apply(const std::string& method, const std::string& tmpl, const nlohmann::json& j);
  // PUT /logger and PUT /metrics (also from the command line at startup).
  Reply Logger(const nlohmann::json& j);
  Reply Metrics(const nlohmann::json& j);

  GuestMachine* machine() const { return machine_.get(); }
  int vsock_fd() const { return vsock_fd_; }

  // Effects that come after the answer, for the server loop: the exit code once the process is to end, what
  // to run once the answer is out, when the simulated crash happens (--crash-after-start).
  int exit_code = -1;
  std::function<void()> after_response;
  std::optional<std::chrono::steady_clock::time_point> crash_at;

 private:
  void Log(const std::string& message, const std::string& level = "Info") { sinks_.Log(message, level); }
  Reply PatchVm(const std::string& state);
  Reply CreateSnapshot(const nlohmann::json& j);
  static Status WriteSparse(const std::string& path, uint64_t size);
  Reply LoadSnapshot(const nlohmann::json& j);
  Reply PatchDrive(const nlohmann::json& j);
  Reply BootRestored();
  std::string OpenSink(const std::string& path);
  Reply BootSource(const nlohmann::json& j);
  Reply MachineConfig(const nlohmann::json& j);
  Reply PatchMachineConfig(const nlohmann::json& j);
  Reply Drive(const nlohmann::json& j);
  Reply Vsock(const nlohmann::json& j);
  void Upsert(const std::string& list, const std::string& id_field, const nlohmann::json& j);
  static bool Exists(const nlohmann::json& path);
  nlohmann::json MachineConfigNow() const;
  Reply Get(const std::string& tmpl);
  Reply Action(const std::string& action);
  Reply InstanceStart();
  nlohmann::json VmConfigNow() const;
  static nlohmann::json BootFilesForQemu(nlohmann::json config);
  MachineOptions MachineOptionsNow() const;
  std::string WorkDir() const;

  bool started_ = false;
  bool paused_ = false;
  // A loaded snapshot waiting for PATCH /vm Resumed: its memory file and the guest's open ports.
  struct Restore {
    std::string memory_path;
    std::map<std::string, bool> open_ports;
  };
  std::optional<Restore> restore_;
  bool logger_configured_ = false;
  bool metrics_configured_ = false;
  nlohmann::json config_ = nlohmann::json::object();
  const Options& o_;
  const ApiSpec& spec_;
  Sinks& sinks_;
  std::unique_ptr<GuestMachine> machine_;
  int vsock_fd_ = -1;
};

}  // namespace nfc::fakefc
