// VmCgroup against fake cgroup trees (plain directories laid out as cgroupfs shows them): which files are
// written with which values, on v1 and on v2. No real v2 host is available here (docs/security.md); the real
// v1 tree is exercised by the harness's sandbox scenario.
#include "sandbox/cgroup.h"

#include <gtest/gtest.h>

#include "base/fs.h"
#include "temp_dir.h"

namespace nfc::sandbox {
namespace {

std::string Read(const std::string& path) {
  auto r = fs::ReadFile(path, 4096);
  return r.ok() ? *r : "<" + r.error().message() + ">";
}

TEST(CgroupLimits, FollowTheVmSizeAndNomadsCpu) {
  CgroupLimits l = LimitsForVm(512, 2, 1000);
  EXPECT_EQ(l.memory_bytes, (512ULL + kVmmMemoryOverheadMib) << 20);
  EXPECT_EQ(l.cpu_shares, 1000u);
  EXPECT_EQ(l.pids_max, 132u);
  EXPECT_EQ(LimitsForVm(128, 1, 0).cpu_shares, 2u) << "cpu.shares has a floor of 2";
  EXPECT_EQ(CpuWeightFromShares(2), 1u);
  EXPECT_EQ(CpuWeightFromShares(1024), 39u);
  EXPECT_EQ(CpuWeightFromShares(262144), 10000u);
}

TEST(CgroupLimits, LimitFilesUseEachVersionsNamesAndLeaveOutZeros) {
  CgroupLimits l{1 << 30, 1024, 130};
  using Files = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(LimitFiles(CgroupVersion::kV1, l),
            (Files{{"memory.limit_in_bytes", "1073741824"}, {"cpu.shares", "1024"}, {"pids.max", "130"}}));
  EXPECT_EQ(LimitFiles(CgroupVersion::kV2, l),
            (Files{{"memory.max", "1073741824"},
                   {"cpu.weight", std::to_string(CpuWeightFromShares(1024))},
                   {"pids.max", "130"}}));
  EXPECT_EQ(LimitFiles(CgroupVersion::kV2, CgroupLimits{0, 0, 7}), (Files{{"pids.max", "7"}}));
  // Nomad's cpu_hard_limit: the quota per period; the kernel's default period when Nomad gives none.
  EXPECT_EQ(LimitFiles(CgroupVersion::kV1, CgroupLimits{0, 0, 0, 50000, 0}),
            (Files{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "50000"}}));
  EXPECT_EQ(LimitFiles(CgroupVersion::kV2, CgroupLimits{0, 0, 0, 150000, 200000}),
            (Files{{"cpu.max", "150000 200000"}}));
}

TEST(CgroupLimits, ReservedCoresAndTheMemoryReservationHaveTheirFiles) {
  CgroupLimits l;
  l.memory_bytes = 2 << 20;
  l.memory_soft_bytes = 1 << 20;
  l.cpuset_cpus = "1-2";
  using Files = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(LimitFiles(CgroupVersion::kV1, l), (Files{{"memory.limit_in_bytes", "2097152"},
                                                      {"memory.soft_limit_in_bytes", "1048576"},
                                                      {"cpuset.cpus", "1-2"}}));
  EXPECT_EQ(LimitFiles(CgroupVersion::kV2, l),
            (Files{{"memory.max", "2097152"}, {"memory.low", "1048576"}, {"cpuset.cpus", "1-2"}}));
}

TEST(CgroupHost, DetectsV2ByItsControllersFileAndV1ByItsMounts) {
  test_support::TempDir v2("cgroup-v2");
  ASSERT_TRUE(fs::WriteFileDurably(v2.Path("cgroup.controllers"), "cpuset cpu io memory pids\n").ok());
  auto h2 = CgroupHost::Detect(v2.path());
  ASSERT_TRUE(h2.ok()) << h2.error().message();
  EXPECT_EQ(h2->version, CgroupVersion::kV2);

  test_support::TempDir v1("cgroup-v1");
  for (const char* c : {"memory", "cpu"}) ASSERT_TRUE(fs::MakeDirs(v1.Path(c), 0755).ok());
  auto missing = CgroupHost::Detect(v1.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("\"pids\""), std::string::npos) << missing.error().message();
  ASSERT_TRUE(fs::MakeDirs(v1.Path("pids"), 0755).ok());
  auto h1 = CgroupHost::Detect(v1.path());
  ASSERT_TRUE(h1.ok()) << h1.error().message();
  EXPECT_EQ(h1->version, CgroupVersion::kV1);
}

TEST(VmCgroup, V1WritesEachControllersLimitInItsOwnTree) {
  test_support::TempDir root("cgroup-v1");
  for (const char* c : {"memory", "cpu", "pids"}) ASSERT_TRUE(fs::MakeDirs(root.Path(c), 0755).ok());
  CgroupHost host{CgroupVersion::kV1, root.path()};
  auto g = VmCgroup::Create(host, "/nomad-firecracker", "nfc-1", LimitsForVm(256, 1, 500));
  ASSERT_TRUE(g.ok()) << g.error().message();
  EXPECT_EQ(Read(root.Path("memory/nomad-firecracker/nfc-1/memory.limit_in_bytes")),
            std::to_string((256ULL + kVmmMemoryOverheadMib) << 20));
  EXPECT_EQ(Read(root.Path("cpu/nomad-firecracker/nfc-1/cpu.shares")), "500");
  EXPECT_EQ(Read(root.Path("pids/nomad-firecracker/nfc-1/pids.max")), "130");
  std::vector<std::string> want = {root.Path("memory/nomad-firecracker/nfc-1/cgroup.procs"),
                                   root.Path("cpu/nomad-firecracker/nfc-1/cgroup.procs"),
                                   root.Path("pids/nomad-firecracker/nfc-1/cgroup.procs")};
  EXPECT_EQ(g->ProcsFiles(), want);
  EXPECT_EQ(VmCgroup::Existing(host, "/nomad-firecracker", "nfc-1").dirs(), g->dirs());
}

// v1 cpuset: every level takes its parent's cpus and mems (a cgroup without them takes no process), then the
// VM's cgroup gets the reserved cores.
TEST(VmCgroup, V1PinsReservedCoresInTheCpusetTree) {
  test_support::TempDir root("cgroup-v1");
  for (const char* c : {"memory", "cpu", "pids", "cpuset"})
    ASSERT_TRUE(fs::MakeDirs(root.Path(c), 0755).ok());
  ASSERT_TRUE(fs::WriteFileDurably(root.Path("cpuset/cpuset.cpus"), "0-3\n").ok());
  ASSERT_TRUE(fs::WriteFileDurably(root.Path("cpuset/cpuset.mems"), "0\n").ok());
  auto host = CgroupHost::Detect(root.path());
  ASSERT_TRUE(host.ok()) << host.error().message();
  EXPECT_TRUE(host->v1_cpuset);

  // Not pinned: no cpuset cgroup is made.
  auto plain = VmCgroup::Create(*host, "/nomad-firecracker", "nfc-0", LimitsForVm(128, 1, 100));
  ASSERT_TRUE(plain.ok()) << plain.error().message();
  EXPECT_EQ(plain->dirs().size(), 3u);
  EXPECT_FALSE(fs::Exists(root.Path("cpuset/nomad-firecracker/nfc-0")));

  CgroupLimits limits = LimitsForVm(256, 2, 500);
  limits.cpuset_cpus = "1-2";
  auto g = VmCgroup::Create(*host, "/nomad-firecracker", "nfc-1", limits);
  ASSERT_TRUE(g.ok()) << g.error().message();
  EXPECT_EQ(Read(root.Path("cpuset/nomad-firecracker/cpuset.cpus")), "0-3");
  EXPECT_EQ(Read(root.Path("cpuset/nomad-firecracker/cpuset.mems")), "0");
  EXPECT_EQ(Read(root.Path("cpuset/nomad-firecracker/nfc-1/cpuset.cpus")), "1-2");
  EXPECT_EQ(Read(root.Path("cpuset/nomad-firecracker/nfc-1/cpuset.mems")), "0");
  EXPECT_EQ(g->ProcsFiles().back(), root.Path("cpuset/nomad-firecracker/nfc-1/cgroup.procs"));
  EXPECT_EQ(VmCgroup::Existing(*host, "/nomad-firecracker", "nfc-1").dirs(), g->dirs());

  // Pinning without a cpuset hierarchy says what is missing.
  CgroupHost no_cpuset{CgroupVersion::kV1, root.path(), false};
  auto refused = VmCgroup::Create(no_cpuset, "/nomad-firecracker", "nfc-2", limits);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("cpuset 1-2"), std::string::npos) << refused.error().message();
}

TEST(VmCgroup, V2EnablesCpusetOnlyWhenCoresArePinned) {
  test_support::TempDir root("cgroup-v2");
  ASSERT_TRUE(fs::WriteFileDurably(root.Path("cgroup.controllers"), "cpuset cpu io memory pids\n").ok());
  CgroupHost host{CgroupVersion::kV2, root.path()};
  CgroupLimits limits = LimitsForVm(256, 1, 500);
  limits.cpuset_cpus = "3";
  limits.memory_soft_bytes = 64 << 20;
  auto g = VmCgroup::Create(host, "/vms", "nfc-3", limits);
  ASSERT_TRUE(g.ok()) << g.error().message();
  EXPECT_EQ(Read(root.Path("vms/cgroup.subtree_control")), "+memory +cpu +pids +cpuset");
  EXPECT_EQ(Read(root.Path("vms/nfc-3/cpuset.cpus")), "3");
  EXPECT_EQ(Read(root.Path("vms/nfc-3/memory.low")), std::to_string(64 << 20));
}

TEST(VmCgroup, V2EnablesTheControllersDownToTheParentAndWritesTheUnifiedFiles) {
  test_support::TempDir root("cgroup-v2");
  ASSERT_TRUE(fs::WriteFileDurably(root.Path("cgroup.controllers"), "cpuset cpu io memory pids\n").ok());
  CgroupHost host{CgroupVersion::kV2, root.path()};
  auto g = VmCgroup::Create(host, "/nomad.slice/vms", "nfc-2", LimitsForVm(1024, 4, 2048));
  ASSERT_TRUE(g.ok()) << g.error().message();
  for (const char* level : {"", "/nomad.slice", "/nomad.slice/vms"}) {
    EXPECT_EQ(Read(root.path() + level + "/cgroup.subtree_control"), "+memory +cpu +pids") << level;
  }
  std::string dir = root.Path("nomad.slice/vms/nfc-2");
  EXPECT_EQ(Read(dir + "/memory.max"), std::to_string((1024ULL + kVmmMemoryOverheadMib) << 20));
  EXPECT_EQ(Read(dir + "/cpu.weight"), std::to_string(CpuWeightFromShares(2048)));
  EXPECT_EQ(Read(dir + "/pids.max"), "136");
  EXPECT_EQ(g->ProcsFiles(), std::vector<std::string>{dir + "/cgroup.procs"});
}

TEST(VmCgroup, RefusesBadNamesAndAMissingController) {
  test_support::TempDir root("cgroup-v2");
  ASSERT_TRUE(fs::WriteFileDurably(root.Path("cgroup.controllers"), "cpu io memory\n").ok());
  CgroupHost host{CgroupVersion::kV2, root.path()};
  auto no_pids = VmCgroup::Create(host, "/p", "vm", LimitsForVm(128, 1, 100));
  ASSERT_FALSE(no_pids.ok());
  EXPECT_NE(no_pids.error().message().find("\"pids\" is not available"), std::string::npos);
  for (const auto& [parent, name] : std::vector<std::pair<std::string, std::string>>{
           {"relative", "vm"}, {"/a/../b", "vm"}, {"/p", "a/b"}, {"/p", ".."}, {"/p", ""}}) {
    auto bad = VmCgroup::Create(host, parent, name, LimitsForVm(128, 1, 100));
    ASSERT_FALSE(bad.ok()) << parent << " " << name;
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace nfc::sandbox
