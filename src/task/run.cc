#include "task/run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <thread>

#include "base/error.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "driver/plugin_config.h"
#include "driver/task_config.h"
#include "task/manager.h"

namespace nfc::task {
namespace {

std::atomic<int> g_interrupts{0};

std::string Hex(int n) {
  std::random_device rd;
  std::string s;
  for (int i = 0; i < n; i++) s += "0123456789abcdef"[rd() & 15];
  return s;
}

bool Exists(const std::string& p) {
  return ::access(p.c_str(), R_OK) == 0;
}

// Copies one FIFO to one of our fds until EOF after the writer (the shim) closed it, like Nomad's logmon.
void Pump(int fifo_fd, int out_fd, std::atomic<bool>* stop) {
  char buf[65536];
  for (;;) {
    struct pollfd p = {fifo_fd, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    if (r < 0 && errno != EINTR) return;
    if (r <= 0) {
      if (stop->load()) return;
      continue;
    }
    ssize_t n = ::read(fifo_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      // EOF: no writer right now (the shim has not opened it yet, or closed it at the end).
      if (stop->load()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out_fd, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      done += w;
    }
  }
}

int CannotRun(const Error& error) {
  std::fprintf(stderr, "error: %s\n", error.message().c_str());
  return 125;
}

// A person is reading: progress comes as "==>" lines; the library's info logs only with NFC_LOG_LEVEL=info.
void ConfigureLogging() {
  const char* level = std::getenv("NFC_LOG_LEVEL");
  log::Configure(2, log::Format::kText, log::ParseLevel(level ? level : "warn", log::Level::kWarn), "run");
}

// The directory of this executable (for a build tree's guest artifacts); argv[0]'s if /proc is unreadable.
std::string ExecutableDir(const std::string& program_path) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string path = n > 0 ? std::string(self, static_cast<size_t>(n)) : program_path;
  size_t slash = path.rfind('/');
  return path.substr(0, slash == std::string::npos ? 0 : slash);
}

// The --kernel/--initrd flag, else the installed file, else one in a build tree next to this executable.
std::string GuestArtifact(const std::string& flag, const std::string& installed, const std::string& exe_dir,
                          const std::string& name) {
  if (!flag.empty()) return flag;
  if (Exists(installed)) return installed;
  for (const char* rel : {"/../../guest/", "/../guest/", "/guest/"}) {
    std::string p = exe_dir + rel + name;
    if (Exists(p)) return p;
  }
  return installed;
}

// The configuration a Nomad agent would send, with the guest artifacts of a build tree as a fallback.
Result<driver::PluginConfig> LocalPluginConfig(const RunOptions& o, const std::string& program_path) {
  driver::PluginConfig config;
  if (!o.data_dir.empty())
    config.data_dir = o.data_dir;
  else if (const char* d = std::getenv("NFC_DATA_DIR"); d && *d)
    config.data_dir = d;
  NFC_ASSIGN_OR_RETURN(config.backend, driver::ParseBackend(o.backend));
  config.insecure_registries = o.insecure_registries;
  config.warm_start = o.warm_start;
  if (!o.ca_file.empty()) config.ca_file = o.ca_file;
  if (!o.firecracker_path.empty()) config.firecracker_path = o.firecracker_path;
  if (!o.qemu_path.empty()) config.qemu_path = o.qemu_path;
  std::string exe_dir = ExecutableDir(program_path);
  config.kernel_path = GuestArtifact(o.kernel, config.kernel_path, exe_dir, "vmlinux");
  config.initrd_path = GuestArtifact(o.initrd, config.initrd_path, exe_dir, "initramfs.cpio.gz");
  return config;
}

Status StartManager(Manager& manager, const driver::PluginConfig& config, bool quiet) {
  manager.SetEventSink([quiet](const driver::TaskEvent& e) {
    if (!quiet) std::fprintf(stderr, "==> %s\n", e.message.c_str());
  });
  NFC_RETURN_IF_ERROR(manager.Configure(config));
  return manager.Init();
}

// Nomad's side of a task's logs: two FIFOs in a private directory, each copied to our stdout or stderr by a
// thread, as logmon does. Close() (or the destructor) waits for the copies and removes the FIFOs.
class LogFifos {
 public:
  static Result<std::unique_ptr<LogFifos>> Create(const std::string& data_dir) {
    std::unique_ptr<LogFifos> fifos(new LogFifos(data_dir + "/run-" + Hex(8)));
    NFC_RETURN_IF_ERROR(fifos->Open());
    return fifos;
  }
  ~LogFifos() { Close(); }
  LogFifos(const LogFifos&) = delete;
  LogFifos& operator=(const LogFifos&) = delete;

  const std::string& stdout_path() const { return out_path_; }
  const std::string& stderr_path() const { return err_path_; }

  // The task is over: the copies end once they have drained the FIFOs (the shim closed them).
  void Finish() { stop_ = true; }

  void Close() {
    Finish();
    if (out_pump_.joinable()) out_pump_.join();
    if (err_pump_.joinable()) err_pump_.join();
    out_.Reset();
    err_.Reset();
    if (!dir_made_) return;
    ::unlink(out_path_.c_str());
    ::unlink(err_path_.c_str());
    ::rmdir(dir_.c_str());
    dir_made_ = false;
  }

 private:
  explicit LogFifos(std::string dir)
      : dir_(std::move(dir)), out_path_(dir_ + "/stdout.fifo"), err_path_(dir_ + "/stderr.fifo") {}

  Status Open() {
    if (::mkdir(dir_.c_str(), 0700) != 0) return Error::Errno("mkdir " + dir_);
    dir_made_ = true;
    for (const std::string* path : {&out_path_, &err_path_}) {
      if (::mkfifo(path->c_str(), 0600) != 0) return Error::Errno("mkfifo " + *path);
    }
    out_.Reset(::open(out_path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!out_) return Error::Errno("open " + out_path_);
    err_.Reset(::open(err_path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!err_) return Error::Errno("open " + err_path_);
    out_pump_ = std::thread(Pump, out_.get(), STDOUT_FILENO, &stop_);
    err_pump_ = std::thread(Pump, err_.get(), STDERR_FILENO, &stop_);
    return Ok();
  }

  std::string dir_, out_path_, err_path_;
  bool dir_made_ = false;
  UniqueFd out_, err_;
  std::atomic<bool> stop_{false};
  std::thread out_pump_, err_pump_;
};

// The task Nomad would send for `run`: a fresh allocation, our FIFOs, the image and the flags' overrides.
struct LocalTask {
  driver::NomadTask task;
  driver::TaskConfig config;
};

LocalTask DescribeTask(const RunOptions& o, const LogFifos& logs) {
  LocalTask t;
  std::string alloc = Hex(8) + "-" + Hex(4) + "-" + Hex(4) + "-" + Hex(4) + "-" + Hex(12);
  std::string name = "run";
  t.task.id = alloc + "/" + name + "/" + Hex(8);
  t.task.name = name;
  t.task.alloc_id = alloc;
  t.task.stdout_path = logs.stdout_path();
  t.task.stderr_path = logs.stderr_path();
  t.task.resources.memory_mb = 256;
  t.config.image = o.image;
  if (o.vcpus > 0) t.config.vcpu_count = o.vcpus;
  if (o.memory_mib > 0) t.config.mem_size_mib = o.memory_mib;
  if (!o.command.empty()) t.config.args = o.command;
  for (const auto& [k, v] : o.env) t.config.env.emplace_back(k, v);
  return t;
}

// Ctrl-C / SIGTERM only count here; StopOnInterrupt stops the task the way Nomad would (signal, timeout, then
// the VM).
void CountInterrupts() {
  struct sigaction sa = {};
  sa.sa_handler = [](int) { g_interrupts++; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

std::thread StopOnInterrupt(Manager& manager, const std::string& task_id, const std::atomic<bool>& finished) {
  return std::thread([&manager, task_id, &finished] {
    while (g_interrupts.load() == 0 && !finished.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_interrupts.load() > 0) (void)manager.StopTask(task_id, std::chrono::seconds(5), "SIGTERM");
  });
}

void PrintTimings(const Manager& manager, const std::string& task_id) {
  auto t = manager.Timings(task_id);
  if (!t) return;
  std::fprintf(stderr,
               "==> start-up: %lld ms total = plan %lld + image %lld + prepare %lld + VMM start %lld + boot "
               "to workload %lld (guest clock: init at %lld ms, workload execve at %lld ms)\n",
               static_cast<long long>(t->total_millis), static_cast<long long>(t->plan_millis),
               static_cast<long long>(t->image_millis), static_cast<long long>(t->prepare_millis),
               static_cast<long long>(t->shim_millis), static_cast<long long>(t->boot_millis),
               static_cast<long long>(t->guest_init_millis),
               static_cast<long long>(t->guest_workload_millis));
  if (t->warm) {
    std::fprintf(
        stderr,
        "==> warm start (shim clock): VMM restored at %lld ms, guest answered at %lld, task delivered "
        "at %lld, workload running at %lld\n",
        static_cast<long long>(t->shim.vmm_started_millis),
        static_cast<long long>(t->shim.guest_connected_millis),
        static_cast<long long>(t->shim.task_delivered_millis),
        static_cast<long long>(t->shim.workload_started_millis));
  }
}

int ExitCode(const Result<driver::ExitResult>& result) {
  if (!result.ok()) return CannotRun(result.error());
  if (!result->err.empty()) std::fprintf(stderr, "error: %s\n", result->err.c_str());
  if (result->oom_killed) std::fprintf(stderr, "==> the workload was killed: out of memory\n");
  if (result->signal && result->exit_code == 0) return 128 + result->signal;
  return result->exit_code;
}

int RunTask(Manager& manager, const RunOptions& o, LogFifos& logs) {
  auto [task, tc] = DescribeTask(o, logs);
  CountInterrupts();
  auto started = manager.StartTask(task, tc);
  if (!started.ok()) return CannotRun(started.error());
  if (o.timings) PrintTimings(manager, task.id);
  std::atomic<bool> finished{false};
  std::thread stopper = StopOnInterrupt(manager, task.id, finished);
  auto result = manager.WaitTask(task.id, [] { return false; });
  finished = true;
  logs.Finish();
  stopper.join();
  (void)manager.DestroyTask(task.id, true);
  logs.Close();
  return ExitCode(result);
}

// `run --template-only`: the template a `run --warm-start` of the same flags would restore, built now.
int BuildTemplateOnly(Manager& manager, const RunOptions& o, const LogFifos& logs) {
  LocalTask t = DescribeTask(o, logs);
  if (!o.quiet) std::fprintf(stderr, "==> building the warm-start template of %s\n", o.image.c_str());
  auto built = manager.BuildTemplate(t.task, t.config);
  if (!built.ok()) return CannotRun(built.error());
  if (!o.quiet) {
    std::fprintf(stderr, "==> warm-start template %s: %.1f MiB on disk in %s\n", built->key.c_str(),
                 static_cast<double>(built->disk_bytes) / (1 << 20), built->dir.c_str());
  }
  std::printf("%s\n", built->key.c_str());
  return 0;
}

}  // namespace

std::vector<flags::Flag> RunFlags(RunOptions* o) {
  return {
      {"--backend", "", "auto|firecracker|qemu",
       "the VMM (plugin option backend). auto: Firecracker when it is installed, else QEMU (with KVM when "
       "its probe boots, else TCG). Default auto.",
       [o](const std::string& v) -> Status {
         if (!driver::ParseBackend(v).ok())
           return Error::InvalidArgument("expected auto, firecracker or qemu");
         o->backend = v;
         return Ok();
       }},
      {"--memory", "-m", "MiB",
       "guest memory in MiB, a whole number from 16 to 1048576 (task option mem_size). Default 256.",
       [o](const std::string& v) -> Status {
         auto n = flags::ParseWholeNumber(v, driver::kMinMemSizeMiB, driver::kMaxMemSizeMiB);
         if (!n.ok()) {
           return Error::InvalidArgument("expected a whole number of MiB from " +
                                         std::to_string(driver::kMinMemSizeMiB) + " to " +
                                         std::to_string(driver::kMaxMemSizeMiB));
         }
         o->memory_mib = *n;
         return Ok();
       }},
      {"--vcpus", "", "N", "virtual CPUs, a whole number from 1 to 32 (task option vcpu_count). Default 1.",
       [o](const std::string& v) -> Status {
         auto n = flags::ParseWholeNumber(v, 1, driver::kMaxVcpuCount);
         if (!n.ok()) {
           return Error::InvalidArgument("expected a whole number of CPUs from 1 to " +
                                         std::to_string(driver::kMaxVcpuCount));
         }
         o->vcpus = static_cast<int>(*n);
         return Ok();
       }},
      {"--env", "-e", "NAME=VALUE",
       "an environment variable for the workload, over the image's (task option env). Repeatable.",
       [o](const std::string& v) -> Status {
         size_t eq = v.find('=');
         if (eq == std::string::npos || eq == 0) return Error::InvalidArgument("expected NAME=VALUE");
         o->env[v.substr(0, eq)] = v.substr(eq + 1);
         return Ok();
       }},
      {"--data-dir", "", "DIR",
       "the plugin's data directory (plugin option data_dir): image cache (DIR/images), task directories. "
       "Default $NFC_DATA_DIR, else /var/lib/nomad-firecracker, the plugin's.",
       flags::NonEmpty(&o->data_dir, "a directory")},
      {"--kernel", "", "PATH",
       "the guest kernel (plugin option kernel_path). Default /usr/lib/nomad-firecracker/guest/vmlinux, else "
       "the one of the build tree this program is in.",
       flags::NonEmpty(&o->kernel, "a path")},
      {"--initrd", "", "PATH",
       "the guest initramfs with nomad-init (plugin option initrd_path). Default "
       "/usr/lib/nomad-firecracker/guest/initramfs.cpio.gz, else the build tree's.",
       flags::NonEmpty(&o->initrd, "a path")},
      {"--firecracker-path", "", "PATH",
       "the Firecracker binary (plugin option firecracker_path). Default: firecracker from PATH.",
       flags::NonEmpty(&o->firecracker_path, "a path")},
      {"--qemu-path", "", "PATH",
       "the QEMU binary (plugin option qemu_path). Default: qemu-system-x86_64 from PATH.",
       flags::NonEmpty(&o->qemu_path, "a path")},
      {"--insecure-registry", "", "HOST[:PORT]",
       "a registry reached over plain HTTP or unverified TLS (plugin option insecure_registries). "
       "Repeatable.",
       [o](const std::string& v) -> Status {
         if (v.empty() || v.find('/') != std::string::npos)
           return Error::InvalidArgument("expected HOST[:PORT]");
         o->insecure_registries.push_back(v);
         return Ok();
       }},
      {"--ca-file", "", "PEM",
       "an extra CA bundle for registries, used with the system's (plugin option ca_file).",
       flags::NonEmpty(&o->ca_file, "a path")},
      {"--timings", "", "",
       "print the start-up breakdown (image, prepare, VMM start, boot) on stderr once the workload runs.",
       [o](const std::string&) -> Status {
         o->timings = true;
         return Ok();
       }},
      {"--warm-start", "", "",
       "restore the VM from a warm-start template of this image and size when there is one (plugin option "
       "warm_start); after a cold start, build that template before exiting, so the next run starts warm.",
       [o](const std::string&) -> Status {
         o->warm_start = true;
         return Ok();
       }},
      {"--template-only", "", "",
       "build the warm-start template of this image, size and flags ahead of time, print its key on stdout "
       "and run nothing: the next `run --warm-start` with the same flags and data dir starts warm.",
       [o](const std::string&) -> Status {
         o->template_only = true;
         o->warm_start = true;
         return Ok();
       }},
      {"--quiet", "-q", "", "no progress lines (\"==> ...\") on stderr; errors still show.",
       [o](const std::string&) -> Status {
         o->quiet = true;
         return Ok();
       }},
  };
}

Result<flags::Outcome> ParseRunArgs(const std::vector<std::string>& args, RunOptions* o) {
  std::vector<flags::Flag> table = RunFlags(o);
  std::vector<std::string> positional;
  NFC_ASSIGN_OR_RETURN(flags::Outcome outcome, flags::Parse(table, args, &positional, &o->command));
  if (outcome == flags::Outcome::kHelp) return outcome;
  if (positional.empty()) return Error::InvalidArgument("missing IMAGE");
  if (positional.size() > 1) {
    return Error::InvalidArgument("unexpected argument \"" + positional[1] + "\" after IMAGE \"" +
                                  positional[0] + "\" (put the command after --)");
  }
  o->image = positional[0];
  return outcome;
}

int RunImage(const RunOptions& o, const std::string& program_path) {
  ::signal(SIGPIPE, SIG_IGN);
  ConfigureLogging();
  auto config = LocalPluginConfig(o, program_path);
  if (!config.ok()) return CannotRun(config.error());
  Manager manager;
  if (Status s = StartManager(manager, *config, o.quiet); !s.ok()) return CannotRun(s.error());
  auto logs = LogFifos::Create(config->data_dir);
  if (!logs.ok()) return CannotRun(logs.error());
  if (o.template_only) return BuildTemplateOnly(manager, o, **logs);
  int code = RunTask(manager, o, **logs);
  // A cold start queued its template: build it now, so that the next run of this image starts warm.
  if (manager.TemplateBuildsPending() > 0) {
    if (!o.quiet)
      std::fprintf(stderr, "==> building the warm-start template for the next run of this image\n");
    manager.WaitForTemplateBuilds();
  }
  return code;
}

}  // namespace nfc::task
