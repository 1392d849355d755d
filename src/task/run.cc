#include "task/run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "base/log.h"
#include "driver/plugin_config.h"
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

}  // namespace

std::string ParseRunArgs(const std::vector<std::string>& args, RunOptions* o) {
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) -> bool {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string v;
    if (a == "--") {
      o->command.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    } else if (a == "--backend") {
      if (!value(&o->backend)) return "--backend needs auto|firecracker|qemu";
    } else if (a == "--memory" || a == "-m") {
      if (!value(&v) || (o->memory_mib = std::atoll(v.c_str())) <= 0) return a + " needs a size in MiB";
    } else if (a == "--vcpus") {
      if (!value(&v) || (o->vcpus = std::atoi(v.c_str())) <= 0) return "--vcpus needs a number";
    } else if (a == "--env" || a == "-e") {
      if (!value(&v) || v.find('=') == std::string::npos || v[0] == '=') return a + " needs NAME=value";
      o->env[v.substr(0, v.find('='))] = v.substr(v.find('=') + 1);
    } else if (a == "--data-dir") {
      if (!value(&o->data_dir)) return "--data-dir needs a path";
    } else if (a == "--kernel") {
      if (!value(&o->kernel)) return "--kernel needs a path";
    } else if (a == "--initrd") {
      if (!value(&o->initrd)) return "--initrd needs a path";
    } else if (a == "--insecure-registry") {
      if (!value(&v)) return "--insecure-registry needs host[:port]";
      o->insecure_registries.push_back(v);
    } else if (a == "--timings") {
      o->timings = true;
    } else if (a == "--quiet" || a == "-q") {
      o->quiet = true;
    } else if (!a.empty() && a[0] == '-') {
      return "unknown option " + a;
    } else if (o->image.empty()) {
      o->image = a;
    } else {
      return "unexpected argument \"" + a + "\" (put the command after --)";
    }
  }
  if (o->image.empty()) return "missing IMAGE";
  return "";
}

int RunImage(const RunOptions& o, const std::string& program_path) {
  ::signal(SIGPIPE, SIG_IGN);
  // A person is reading: progress comes as "==>" lines; the library's info logs only with NFC_LOG_LEVEL=info.
  const char* level = std::getenv("NFC_LOG_LEVEL");
  log::Configure(2, log::Format::kText, log::ParseLevel(level ? level : "warn", log::Level::kWarn), "run");
  // The configuration a Nomad agent would send, with the guest artifacts of a build tree as a fallback.
  driver::PluginConfig config;
  if (!o.data_dir.empty())
    config.data_dir = o.data_dir;
  else if (const char* d = std::getenv("NFC_DATA_DIR"); d && *d)
    config.data_dir = d;
  auto parsed = driver::ParseBackend(o.backend);
  if (!parsed.ok()) {
    std::fprintf(stderr, "error: %s\n", parsed.error().message().c_str());
    return 125;
  }
  config.backend = *parsed;
  config.insecure_registries = o.insecure_registries;
  std::string exe_dir =
      program_path.substr(0, program_path.rfind('/') == std::string::npos ? 0 : program_path.rfind('/'));
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0)
    exe_dir = std::string(self, static_cast<size_t>(n))
                  .substr(0, std::string(self, static_cast<size_t>(n)).rfind('/'));
  auto pick = [&](const std::string& flag, const std::string& installed, const std::string& name) {
    if (!flag.empty()) return flag;
    if (Exists(installed)) return installed;
    for (const char* rel : {"/../../guest/", "/../guest/", "/guest/"}) {
      std::string p = exe_dir + rel + name;
      if (Exists(p)) return p;
    }
    return installed;
  };
  config.kernel_path = pick(o.kernel, config.kernel_path, "vmlinux");
  config.initrd_path = pick(o.initrd, config.initrd_path, "initramfs.cpio.gz");

  Manager manager;
  manager.SetEventSink([&](driver::TaskEvent e) {
    if (!o.quiet) std::fprintf(stderr, "==> %s\n", e.message.c_str());
  });
  if (Status s = manager.Configure(config); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.error().message().c_str());
    return 125;
  }
  if (Status s = manager.Init(); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.error().message().c_str());
    return 125;
  }

  // Nomad's side of the logs: FIFOs in a private directory, read like logmon does.
  std::string logs = config.data_dir + "/run-" + Hex(8);
  if (::mkdir(logs.c_str(), 0700) != 0) {
    std::fprintf(stderr, "error: mkdir %s: %s\n", logs.c_str(), std::strerror(errno));
    return 125;
  }
  std::string out_fifo = logs + "/stdout.fifo", err_fifo = logs + "/stderr.fifo";
  ::mkfifo(out_fifo.c_str(), 0600);
  ::mkfifo(err_fifo.c_str(), 0600);
  int out_fd = ::open(out_fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  int err_fd = ::open(err_fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  std::atomic<bool> stop_pumps{false};
  std::thread out_pump(Pump, out_fd, 1, &stop_pumps);
  std::thread err_pump(Pump, err_fd, 2, &stop_pumps);
  auto cleanup_logs = [&] {
    stop_pumps = true;
    out_pump.join();
    err_pump.join();
    ::close(out_fd);
    ::close(err_fd);
    ::unlink(out_fifo.c_str());
    ::unlink(err_fifo.c_str());
    ::rmdir(logs.c_str());
  };

  driver::NomadTask task;
  std::string alloc = Hex(8) + "-" + Hex(4) + "-" + Hex(4) + "-" + Hex(4) + "-" + Hex(12);
  std::string name = "run";
  task.id = alloc + "/" + name + "/" + Hex(8);
  task.name = name;
  task.alloc_id = alloc;
  task.stdout_path = out_fifo;
  task.stderr_path = err_fifo;
  task.resources.memory_mb = 256;
  driver::TaskConfig tc;
  tc.image = o.image;
  if (o.vcpus > 0) tc.vcpu_count = o.vcpus;
  if (o.memory_mib > 0) tc.mem_size_mib = o.memory_mib;
  if (!o.command.empty()) tc.args = o.command;
  for (const auto& [k, v] : o.env) tc.env.emplace_back(k, v);

  // Ctrl-C / SIGTERM: stop the task the way Nomad would (signal, timeout, then the VM).
  struct sigaction sa = {};
  sa.sa_handler = [](int) { g_interrupts++; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  auto started = manager.StartTask(task, tc);
  if (!started.ok()) {
    std::fprintf(stderr, "error: %s\n", started.error().message().c_str());
    cleanup_logs();
    return 125;
  }
  if (o.timings) {
    if (auto t = manager.Timings(task.id)) {
      std::fprintf(
          stderr,
          "==> start-up: %lld ms total = image %lld + prepare %lld + VMM start %lld + boot to workload %lld "
          "(guest clock: init at %lld ms, workload execve at %lld ms)\n",
          static_cast<long long>(t->total_millis), static_cast<long long>(t->image_millis),
          static_cast<long long>(t->prepare_millis), static_cast<long long>(t->shim_millis),
          static_cast<long long>(t->boot_millis), static_cast<long long>(t->guest_init_millis),
          static_cast<long long>(t->guest_workload_millis));
    }
  }
  std::thread stopper([&] {
    while (g_interrupts.load() == 0 && !stop_pumps.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_interrupts.load() > 0) (void)manager.StopTask(task.id, std::chrono::seconds(5), "SIGTERM");
  });
  auto result = manager.WaitTask(task.id, [] { return false; });
  stop_pumps = true;  // ends the stopper; the pumps drain to EOF first (the shim closed the FIFOs)
  stopper.join();
  (void)manager.DestroyTask(task.id, true);
  cleanup_logs();
  if (!result.ok()) {
    std::fprintf(stderr, "error: %s\n", result.error().message().c_str());
    return 125;
  }
  if (!result->err.empty()) std::fprintf(stderr, "error: %s\n", result->err.c_str());
  if (result->oom_killed) std::fprintf(stderr, "==> the workload was killed: out of memory\n");
  if (result->signal && result->exit_code == 0) return 128 + result->signal;
  return result->exit_code;
}

}  // namespace nfc::task
