// bench-boot: where the time goes when a task boots under the QEMU backend. Not a test: it prints figures.
//
// Per run: VMM start (spawn QEMU, QMP handshake, vCPUs running) -> kernel start (firmware + loading vmlinux)
// -> init start -> workload execve -> workload exit -> VMM exit. Guest phases come from nomad-init's own
// CLOCK_MONOTONIC timestamps (0 = kernel start); the kernel's start on the host timeline is placed by
// subtracting the guest's workload-exit timestamp from the moment the host received the exit result.
//
// Usage: bench-boot [RUNS]   (default 5; NFC_GUEST_DIR overrides where vmlinux/initramfs are)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "guest_boot.h"

using namespace std::chrono_literals;
using nfc::vmm::testing::BootGuest;
using nfc::vmm::testing::CollectWorkload;
using nfc::vmm::testing::GuestArtifacts;
using nfc::vmm::testing::GuestWorkdir;

namespace {

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  auto artifacts = GuestArtifacts::Find();
  if (!artifacts.ok()) {
    std::fprintf(stderr, "bench-boot: guest artifacts missing (%s); build target guest-artifacts\n",
                 artifacts.vmlinux.c_str());
    return 1;
  }
  auto work = GuestWorkdir::Create();
  if (!work.ok()) {
    std::fprintf(stderr, "bench-boot: %s\n", work.error().message().c_str());
    return 1;
  }
  const char* cols[] = {"vmm-start",    "to-kernel",     "kernel->init", "init->execve",
                        "execve->exit", "exit->vmm-end", "total"};
  std::vector<std::vector<double>> table(7);
  bool kvm = false;
  std::printf("%-4s", "run");
  for (const char* c : cols) std::printf(" %13s", c);
  std::printf("   (ms)\n");
  for (int i = 0; i < runs; i++) {
    auto b = BootGuest(artifacts, **work, "bench" + std::to_string(i), {"/bin/true"}, 120s, /*quiet=*/true);
    if (!b.ok()) {
      std::fprintf(stderr, "run %d: %s\n", i, b.error().message().c_str());
      return 1;
    }
    kvm = b->vmm->Record().kvm;
    auto w = CollectWorkload(*b->agent, 120s);
    if (!w.ok()) {
      std::fprintf(stderr, "run %d: %s\n", i, w.error().message().c_str());
      return 1;
    }
    auto exit = b->vmm->Wait(120s);
    auto t_end = std::chrono::steady_clock::now();
    if (!exit.ok()) {
      std::fprintf(stderr, "run %d: %s\n", i, exit.error().message().c_str());
      return 1;
    }
    // Guest timestamps: ns since the guest kernel started its monotonic clock.
    double init_ms = w->boot.init_start_ns / 1e6;
    double execve_ms = w->boot.workload_execve_ns / 1e6;
    double exit_ms = w->boot.workload_exit_ns / 1e6;
    double kernel_start = Ms(w->t_exit_received - b->t_start) - exit_ms;  // host ms after t_start
    std::vector<double> row = {Ms(b->t_started - b->t_start),
                               kernel_start - Ms(b->t_started - b->t_start),
                               init_ms,
                               execve_ms - init_ms,
                               exit_ms - execve_ms,
                               Ms(t_end - w->t_exit_received),
                               Ms(t_end - b->t_start)};
    std::printf("%-4d", i);
    for (size_t c = 0; c < row.size(); c++) {
      std::printf(" %13.1f", row[c]);
      table[c].push_back(row[c]);
    }
    std::printf("\n");
  }
  std::printf("%-4s", "mean");
  for (auto& col : table) std::printf(" %13.1f", std::accumulate(col.begin(), col.end(), 0.0) / col.size());
  std::printf("\n%-4s", "min");
  for (auto& col : table) std::printf(" %13.1f", *std::min_element(col.begin(), col.end()));
  std::printf("\n%-4s", "max");
  for (auto& col : table) std::printf(" %13.1f", *std::max_element(col.begin(), col.end()));
  std::printf("\naccelerator: %s; %d runs; workload /bin/true; kernel %s\n", kvm ? "KVM" : "TCG", runs,
              artifacts.vmlinux.c_str());
  return 0;
}
