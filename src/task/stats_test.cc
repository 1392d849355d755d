#include "task/stats.h"

#include <gtest/gtest.h>

namespace nfc::task {
namespace {

TEST(ComputeUsage, PercentAndTicksFromTwoSamples) {
  shim::StatsSample a;
  a.sampled_at_unix_nanos = 1'000'000'000;
  a.guest_available = true;
  a.guest_cpu_user_nanos = 100'000'000;
  a.guest_cpu_system_nanos = 50'000'000;
  a.vmm_pid = 7;
  a.vmm_cpu_user_nanos = 0;
  shim::StatsSample b = a;
  b.sampled_at_unix_nanos = 2'000'000'000;             // 1 s later
  b.guest_cpu_user_nanos = 100'000'000 + 500'000'000;  // +0.5 s user
  b.guest_cpu_system_nanos = 50'000'000 + 250'000'000;
  b.guest_memory_rss_bytes = 10 << 20;
  b.vmm_cpu_user_nanos = 1'000'000'000;  // one full core on the host
  b.vmm_rss_bytes = 64 << 20;
  TaskUsage first = ComputeUsage(std::nullopt, a, 2000);
  EXPECT_FALSE(first.guest.cpu_measured);
  TaskUsage u = ComputeUsage(a, b, 2000);
  EXPECT_TRUE(u.guest.cpu_measured);
  EXPECT_DOUBLE_EQ(u.guest.cpu_user_percent, 50);
  EXPECT_DOUBLE_EQ(u.guest.cpu_system_percent, 25);
  EXPECT_DOUBLE_EQ(u.guest.cpu_percent, 75);
  EXPECT_DOUBLE_EQ(u.guest.cpu_total_ticks, 1500);
  EXPECT_EQ(u.guest.memory_rss, 10u << 20);
  EXPECT_DOUBLE_EQ(u.vmm.cpu_percent, 100);
  EXPECT_EQ(u.vmm.memory_rss, 64u << 20);
}

TEST(ComputeUsage, UnavailableGuestIsNotMeasured) {
  shim::StatsSample a, b;
  a.sampled_at_unix_nanos = 1;
  b.sampled_at_unix_nanos = 2;
  TaskUsage u = ComputeUsage(a, b, 1000);
  EXPECT_FALSE(u.guest.cpu_measured);
  EXPECT_FALSE(u.guest.memory_measured);
}

}  // namespace
}  // namespace nfc::task
