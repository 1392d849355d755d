#include "task/sizing.h"

#include <gtest/gtest.h>

namespace nfc::task {
namespace {

HostFacts Host() {
  HostFacts h;
  h.cores = 8;
  h.mhz_per_core = 2000;
  h.memory_mib = 16384;
  return h;
}

TEST(SizeVm, TaskConfigWins) {
  SizingInput in;
  in.vcpus_config = 3;
  in.memory_config_mib = 1024;
  in.cpu_shares_mhz = 100;
  in.memory_mb = 300;
  auto s = SizeVm(in, Host());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->vcpus, 3);
  EXPECT_EQ(s->memory_mib, 1024);
  EXPECT_EQ(s->vcpus_from, "task config vcpu_count");
}

TEST(SizeVm, FromNomadResources) {
  SizingInput in;
  in.cpu_shares_mhz = 4500;  // 2.25 cores of 2000 MHz -> 3
  in.memory_mb = 300;
  in.memory_max_mb = 600;
  auto s = SizeVm(in, Host());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->vcpus, 3);
  EXPECT_EQ(s->memory_mib, 600);
  in.cpuset_cpus = "0-1,6";
  s = SizeVm(in, Host());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->vcpus, 3);
  EXPECT_EQ(s->vcpus_from, "reserved cores");
  in = {};
  in.cpu_shares_mhz = 100000;  // more than the host: clamped
  in.memory_mb = 10;           // below the minimum: raised
  s = SizeVm(in, Host());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->vcpus, 8);
  EXPECT_EQ(s->memory_mib, kMinMemoryMiB);
}

TEST(SizeVm, ImpossibleSizesAreErrorsNamingTheField) {
  SizingInput in;
  in.memory_config_mib = 1 << 20;
  auto s = SizeVm(in, Host());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("mem_size = 1048576 MiB is more than this host's 16384 MiB"),
            std::string::npos)
      << s.error().message();
  in = {};
  in.memory_config_mib = 8;
  s = SizeVm(in, Host());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("mem_size = 8 MiB"), std::string::npos);
  in = {};
  in.vcpus_config = 64;
  s = SizeVm(in, Host());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("vcpu_count = 64"), std::string::npos);
  in = {};
  in.cpuset_cpus = "3-1";
  s = SizeVm(in, Host());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("bad range \"3-1\""), std::string::npos);
}

TEST(HostFacts, DetectsThisMachine) {
  HostFacts h = HostFacts::Detect();
  EXPECT_GE(h.cores, 1);
  EXPECT_GT(h.memory_mib, 0);
  EXPECT_GT(h.mhz_per_core, 0);
}

}  // namespace
}  // namespace nfc::task
