// bench-warm-start: StartTask until the workload runs, warm against cold, in one run on one machine (the
// lifecycle tests' registry, demo image and Manager; QEMU, sandboxed, as a Nomad agent would run it).
// Prints medians (and min-max) of each, their ratio, a warm start's breakdown, and what the template costs.
// Never asserts a time: figures are for reading (docs/warm-start.md).
//
// Usage: sudo build/test/tests/lifecycle/bench-warm-start [RUNS]   (RUNS per kind, default 10, alternating)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "driver/host_probe.h"
#include "lifecycle_fixture.h"
#include "vmm/qemu/qemu_vmm.h"
#include "warm/template.h"

namespace nfc::lifecycle_test {
namespace {

struct Sample {
  int64_t start_ms = 0;  // StartTask call -> returned (the workload runs)
  bool warm = false;
  task::Manager::StartTimings timings;
  int64_t vmm_rss_kib = 0;
};

int64_t RssKib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

// The VMM of a task: the QEMU whose command line names its task dir.
int64_t VmmRssKib(const std::string& task_dir) {
  for (int pid : ProcessesMentioning(task_dir)) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string comm;
    std::getline(in, comm);
    if (comm.rfind("qemu", 0) == 0) return RssKib(pid);
  }
  return 0;
}

Result<Sample> StartOnce(Env* env, task::Manager& m, const std::string& name, bool warm) {
  auto t = MakeTask(env, name, {"/bin/sh", "-c", "echo up; sleep 60"});
  t->config.warm_start = warm;
  auto t0 = std::chrono::steady_clock::now();
  auto started = m.StartTask(t->task, t->config);
  auto t1 = std::chrono::steady_clock::now();
  if (!started.ok()) return std::move(started).error();
  Sample s;
  s.start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count();
  s.timings = *m.Timings(t->task.id);
  s.warm = s.timings.warm;
  // Let the guest settle (its page cache, the workload's first pages) before the VMM's RSS is read.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  if (auto state = m.State(t->task.id)) s.vmm_rss_kib = VmmRssKib(state->task_dir);
  NFC_RETURN_IF_ERROR(m.DestroyTask(t->task.id, true));
  return s;
}

int64_t MedianOf(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

template <typename F>
std::vector<int64_t> Values(const std::vector<Sample>& samples, F field) {
  std::vector<int64_t> v;
  v.reserve(samples.size());
  for (const auto& s : samples) v.push_back(field(s));
  return v;
}

template <typename F>
std::string Stat(const std::vector<Sample>& samples, F field) {
  std::vector<int64_t> v = Values(samples, field);
  if (v.empty()) return "-";
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return std::to_string(MedianOf(v)) + " (" + std::to_string(*lo) + "-" + std::to_string(*hi) + ")";
}

int64_t MedianStart(const std::vector<Sample>& samples) {
  return MedianOf(Values(samples, [](const Sample& s) { return s.start_ms; }));
}

int Run(int runs) {
  ::setenv("NFC_LIFECYCLE_WARM_START", "1", 1);  // the fixture primes the template (one cold start + build)
  const SharedEnvResult& shared = SharedEnv();
  if (!shared.env) {
    std::cerr << "bench-warm-start: " << (shared.missing.empty() ? shared.failed : shared.missing) << "\n";
    return 1;
  }
  Env* env = shared.env;
  auto m = NewManager(env);
  std::vector<Sample> cold, warm;
  for (int i = 0; i < runs; i++) {
    for (bool w : {false, true}) {
      auto s = StartOnce(env, *m, (w ? "warm" : "cold") + std::to_string(i), w);
      if (!s.ok()) {
        std::cerr << "bench-warm-start: a start failed: " << s.error().message() << "\n";
        return 1;
      }
      if (s->warm != w) {
        std::cerr << "bench-warm-start: a " << (w ? "warm" : "cold") << " start was not (see the log)\n";
        return 1;
      }
      (w ? warm : cold).push_back(*s);
    }
  }
  auto templates = warm::TemplateStore(env->config.data_dir).List();
  // The accelerator the Manager chose: its probe's answer, cached in this process (no second probe).
  auto qemu = driver::ResolveProgram(env->config.qemu_path);
  bool kvm = qemu.ok() && vmm::qemu::ProbeKvm(*qemu, env->config.kernel_path).usable;
  std::cout << "\nStartTask -> workload running, QEMU " << (kvm ? "KVM" : "TCG") << ", sandboxed, " << runs
            << " runs each, alternating; ms: median (min-max)\n";
  std::printf("  %-44s %-22s %-22s\n", "", "cold", "warm");
  auto row = [&](const char* what, auto field) {
    std::printf("  %-44s %-22s %-22s\n", what, Stat(cold, field).c_str(), Stat(warm, field).c_str());
  };
  row("StartTask total", [](const Sample& s) { return s.start_ms; });
  row("  image (cache hit) + task dir, scratch, initrd",
      [](const Sample& s) { return s.timings.image_millis + s.timings.prepare_millis; });
  row("  shim: VMM started (warm: loaded + resumed)",
      [](const Sample& s) { return s.timings.shim.vmm_started_millis; });
  row("  shim: guest agent connected", [](const Sample& s) { return s.timings.shim.guest_connected_millis; });
  row("  shim: task delivered (warm)", [](const Sample& s) { return s.timings.shim.task_delivered_millis; });
  row("  shim: workload running", [](const Sample& s) { return s.timings.shim.workload_started_millis; });
  row("  guest: delivery -> root + overlay mounted",
      [](const Sample& s) { return s.timings.shim.guest_delivery_to_root_millis; });
  row("  guest: delivery -> workload execve",
      [](const Sample& s) { return s.timings.shim.guest_delivery_to_exec_millis; });
  row("VMM RSS with the workload running (KiB)", [](const Sample& s) { return s.vmm_rss_kib; });
  std::printf(
      "  ratio cold/warm of the medians: %.2f\n",
      static_cast<double>(MedianStart(cold)) / static_cast<double>(std::max<int64_t>(MedianStart(warm), 1)));
  for (const auto& t : templates) {
    std::printf("  template %s: %.1f MiB on disk (snapshot + initramfs), built in %lld ms\n", t.key.c_str(),
                static_cast<double>(t.disk_bytes) / (1 << 20), static_cast<long long>(t.build_millis));
  }
  return 0;
}

}  // namespace
}  // namespace nfc::lifecycle_test

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 10;
  if (runs < 1) {
    std::cerr << "usage: bench-warm-start [RUNS>=1]\n";
    return 2;
  }
  return nfc::lifecycle_test::Run(runs);
}
