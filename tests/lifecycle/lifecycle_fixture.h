// Shared fixture of the lifecycle tests: a real local registry (TLS + basic auth) holding a busybox image the
// test builds, the guest kernel + initramfs from the guest-artifacts target, a task Manager configured like a
// Nomad agent would configure the plugin (QEMU backend: TCG on the development machines), and a logmon-like
// reader that owns Nomad's FIFOs and copies them into log files (it outlives "plugin" processes that tests
// kill).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "driver/task_manager.h"
#include "registry_fixture.h"
#include "task/manager.h"

namespace nfc::lifecycle_test {

// Reads one FIFO into a file until Stop(), like Nomad's logmon.
class FifoToFile {
 public:
  FifoToFile(std::string fifo, std::string file);
  ~FifoToFile();
  void Stop();
  std::string Contents() const;
  // Waits until everything written to the FIFO before the call is in the file; false after `limit`. The shim
  // flushes a task's output before its exit is recorded, so after WaitTask this is all of the output.
  bool WaitDrained(std::chrono::milliseconds limit = std::chrono::seconds(10)) const;

 private:
  std::string fifo_, file_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> empty_passes_{0};  // reader passes that found nothing to read
  std::thread thread_;
};

struct Env {
  std::string dir;  // everything of this test run
  std::unique_ptr<image::testing::LocalRegistry> registry;
  std::string image;  // "<host>/demo:1"
  driver::PluginConfig config;
};

// The environment of this test binary, set up once, or why there is none.
struct SharedEnvResult {
  Env* env = nullptr;
  std::string missing;  // a prerequisite this machine lacks (guest artifacts, registry tools)
  std::string failed;   // setting up went wrong (the registry did not start, the push failed): a test failure
};
const SharedEnvResult& SharedEnv();

// A task as Nomad would describe it, with its FIFOs and their readers.
struct NomadTaskFixture {
  driver::NomadTask task;
  driver::TaskConfig config;
  std::unique_ptr<FifoToFile> stdout_reader, stderr_reader;
  std::string Stdout() const { return stdout_reader->Contents(); }
  std::string Stderr() const { return stderr_reader->Contents(); }
  // Both readers hold everything the task wrote (see FifoToFile::WaitDrained).
  bool WaitLogsDrained() const { return stdout_reader->WaitDrained() && stderr_reader->WaitDrained(); }
};
std::unique_ptr<NomadTaskFixture> MakeTask(Env* env, const std::string& name,
                                           const std::vector<std::string>& argv);

// The msgpack the agent would send for `config { image = ..., args = [...] }` is what the harness tests; here
// the Manager is driven with the decoded TaskConfig (StartTask), which is the same code path after
// decoding.
std::unique_ptr<task::Manager> NewManager(Env* env);

// Warm start (docs/warm-start.md): with NFC_LIFECYCLE_WARM_START=1 the whole suite runs with the plugin's
// warm_start on, after one cold start built the template of the tasks' shape, and counts how its starts went
// (Managers made by NewManager report their task events here).
bool WarmStartMode();
struct StartCounts {
  std::atomic<int> warm{0};      // "Restoring VM from its warm-start template"
  std::atomic<int> cold{0};      // "Booting VM"
  std::atomic<int> fallback{0};  // "Warm start failed; booted cold"
};
StartCounts& Starts();
// With NFC_LIFECYCLE_BACKEND=firecracker the tasks run on Firecracker 1.16.1 played by the booting stand-in,
// through the jailer stand-in (tests/fake-firecracker, tests/fake-jailer); every API request they get is
// recorded in FirecrackerRequests(env) (JSON lines: method, path, body, status).
bool FirecrackerMode();
std::string FirecrackerRequests(const Env* env);

bool ProcessAlive(int pid);
// Numbers of processes whose /proc/<pid>/cwd or cmdline mentions `needle`.
std::vector<int> ProcessesMentioning(const std::string& needle);

}  // namespace nfc::lifecycle_test
