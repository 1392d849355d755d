// bench-boot: where the time goes when a task boots, on the QEMU backend and on the Firecracker backend
// (through the Firecracker stand-in, which boots the same VM in QEMU microvm), side by side in one run. Not a
// test: it prints figures.
//
// Per run: VMM start (spawn the VMM, configure it, vCPUs running) -> kernel start (firmware + loading
// vmlinux)
// -> init start -> workload execve -> workload exit -> VMM exit. Guest phases come from nomad-init's own
// CLOCK_MONOTONIC timestamps (0 = kernel start); the kernel's start on the host timeline is placed by
// subtracting the guest's workload-exit timestamp from the moment the host received the exit result. The two
// backends alternate run by run, so a busy moment of the machine hits both.
//
// What the Firecracker column measures: our backend's API sequence against the stand-in (spawn, 7-9 requests,
// InstanceStart) plus the stand-in's QEMU start, and the guest reached through hybrid vsock relayed to
// virtio-serial. It is not Firecracker's own speed (no KVM here).
//
// The confined series: QEMU in its sandbox, and Firecracker through the jailer stand-in (tests/fake-jailer);
// both need root. Usage: bench-boot [RUNS]   (default 5; NFC_GUEST_DIR overrides where vmlinux/initramfs are)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "guest_boot.h"
#include "sandbox/cgroup.h"

using namespace std::chrono_literals;
using nfc::vmm::Backend;
using nfc::vmm::testing::BootGuest;
using nfc::vmm::testing::BootOptions;
using nfc::vmm::testing::CollectWorkload;
using nfc::vmm::testing::GuestArtifacts;
using nfc::vmm::testing::GuestWorkdir;

namespace {

constexpr const char* kColumns[] = {"vmm-start",    "to-kernel",     "kernel->init", "init->execve",
                                    "execve->exit", "exit->vmm-end", "total"};
constexpr size_t kColumnCount = std::size(kColumns);

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Series {
  std::string name;
  BootOptions options;
  std::vector<std::vector<double>> columns = std::vector<std::vector<double>>(kColumnCount);
  bool kvm = false;
};

// One boot of /bin/true; the row of phase durations in ms.
nfc::Result<std::vector<double>> BootOnce(const GuestArtifacts& artifacts, const GuestWorkdir& work,
                                          const std::string& name, Series& s) {
  NFC_ASSIGN_OR_RETURN(auto b, BootGuest(artifacts, work, name, {"/bin/true"}, 120s, s.options));
  s.kvm = b.vmm->Record().kvm;
  NFC_ASSIGN_OR_RETURN(auto w, CollectWorkload(*b.agent, 120s));
  NFC_ASSIGN_OR_RETURN(auto exit, b.vmm->Wait(120s));
  (void)exit;
  auto t_end = std::chrono::steady_clock::now();
  if (s.options.jailer) {
    // The jailer's cgroup for this VM: gone with the VM's processes, so it can be removed now.
    auto host = nfc::sandbox::CgroupHost::Detect();
    if (host.ok()) {
      NFC_RETURN_IF_ERROR(
          nfc::sandbox::VmCgroup::Existing(*host, "/" + s.options.jailer->parent_cgroup, name).Remove());
    }
  }
  double init_ms = w.boot.init_start_ns / 1e6;
  double execve_ms = w.boot.workload_execve_ns / 1e6;
  double exit_ms = w.boot.workload_exit_ns / 1e6;
  double started = Ms(b.t_started - b.t_start);
  double kernel_start = Ms(w.t_exit_received - b.t_start) - exit_ms;  // host ms after t_start
  return std::vector<double>{started,
                             kernel_start - started,
                             init_ms,
                             execve_ms - init_ms,
                             exit_ms - execve_ms,
                             Ms(t_end - w.t_exit_received),
                             Ms(t_end - b.t_start)};
}

void PrintRow(const char* label, const std::vector<double>& row) {
  std::printf("%-38s", label);
  for (double v : row) std::printf(" %13.1f", v);
  std::printf("\n");
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
  auto fc = nfc::vmm::testing::WriteFirecrackerStandIn((*work)->dir(), NFC_FAKE_FIRECRACKER, NFC_FC_SPEC_DIR,
                                                       "1.16.1", (*work)->dir() + "/requests.jsonl");
  if (!fc.ok()) {
    std::fprintf(stderr, "bench-boot: %s\n", fc.error().message().c_str());
    return 1;
  }
  // The sandboxed QEMU (docs/security.md): its own uid, chroot into an empty jail, seccomp; no cgroup here.
  std::string jail = (*work)->dir() + "/jail";
  if (::mkdir(jail.c_str(), 0555) != 0) {
    std::fprintf(stderr, "bench-boot: mkdir %s failed\n", jail.c_str());
    return 1;
  }
  // Firecracker through the jailer stand-in (its own uid, mount and pid namespaces, chroot, cgroup).
  auto jailer = nfc::vmm::testing::WriteJailerStandIn((*work)->dir(), NFC_FAKE_JAILER, NFC_FAKE_FIRECRACKER,
                                                      NFC_FC_SPEC_DIR, (*work)->dir() + "/requests.jsonl");
  if (!jailer.ok()) {
    std::fprintf(stderr, "bench-boot: %s\n", jailer.error().message().c_str());
    return 1;
  }
  nfc::vmm::JailerConfig jailed{*jailer,
                                (*work)->dir() + "/chroots",
                                200998,
                                200998,
                                "",
                                "nfc-bench-" + std::to_string(::getpid()),
                                nfc::sandbox::LimitsForVm(256, 1, 1000),
                                2048};
  std::vector<Series> series = {
      {"qemu", {.quiet = true}},
      {"firecracker (stand-in)", {.quiet = true, .backend = Backend::kFirecracker, .vmm_binary = *fc}},
      {"qemu sandboxed", {.quiet = true, .sandbox = nfc::vmm::VmmSandbox{200999, 200999, jail, {}}}},
      {"firecracker jailed",
       {.quiet = true, .backend = Backend::kFirecracker, .vmm_binary = *fc, .jailer = jailed}}};
  std::printf("%-38s", "run");
  for (const char* c : kColumns) std::printf(" %13s", c);
  std::printf("   (ms)\n");
  for (int i = 0; i < runs; i++) {
    for (auto& s : series) {
      auto row =
          BootOnce(artifacts, **work, "bench" + std::to_string(i) + "-" + std::to_string(&s - &series[0]), s);
      if (!row.ok()) {
        std::fprintf(stderr, "%s run %d: %s\n", s.name.c_str(), i, row.error().message().c_str());
        return 1;
      }
      for (size_t c = 0; c < kColumnCount; c++) s.columns[c].push_back((*row)[c]);
      PrintRow((std::to_string(i) + " " + s.name).c_str(), *row);
    }
  }
  std::vector<std::vector<double>> medians;
  for (auto& s : series) {
    std::vector<double> m, lo, hi;
    for (auto& col : s.columns) {
      m.push_back(Median(col));
      lo.push_back(*std::min_element(col.begin(), col.end()));
      hi.push_back(*std::max_element(col.begin(), col.end()));
    }
    PrintRow(("median " + s.name).c_str(), m);
    PrintRow(("min " + s.name).c_str(), lo);
    PrintRow(("max " + s.name).c_str(), hi);
    medians.push_back(m);
  }
  for (size_t k = 1; k < series.size(); k++) {
    std::printf("%-38s", ("ratio " + series[k].name + " / qemu").c_str());
    for (size_t c = 0; c < kColumnCount; c++) std::printf(" %13.2f", medians[k][c] / medians[0][c]);
    std::printf("\n");
  }
  std::printf("%-38s", "ratio fc jailed / firecracker");
  for (size_t c = 0; c < kColumnCount; c++) std::printf(" %13.2f", medians[3][c] / medians[1][c]);
  std::printf("\n");
  if (auto host = nfc::sandbox::CgroupHost::Detect(); host.ok()) {
    nfc::sandbox::VmCgroup parent = nfc::sandbox::VmCgroup::Existing(*host, "", jailed.parent_cgroup);
    for (const auto& dir : parent.dirs()) ::rmdir(dir.c_str());
  }
  std::printf("accelerator: %s; %d runs each, alternating; workload /bin/true; kernel %s\n",
              series[0].kvm ? "KVM" : "TCG", runs, artifacts.vmlinux.c_str());
  return 0;
}
