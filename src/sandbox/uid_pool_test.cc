#include "sandbox/uid_pool.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

#include "base/fs.h"
#include "temp_dir.h"

namespace nfc::sandbox {
namespace {

TEST(UidRange, ParsesAndRefusesNamingTheValue) {
  auto r = UidRange::Parse("200000-265535");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->first, 200000u);
  EXPECT_EQ(r->last, 265535u);
  EXPECT_EQ(r->ToString(), "200000-265535");
  for (const char* bad :
       {"", "200000", "0-10", "10-5", "a-5", "5-", "-5", "1-4294967295", "1-99999999999", "1 -2"}) {
    auto e = UidRange::Parse(bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(e.error().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << e.error().message();
  }
}

class UidPoolTest : public ::testing::Test {
 protected:
  std::string Owner(const std::string& name) {
    std::string d = tmp_.path() + "/" + name;
    EXPECT_TRUE(fs::MakeDirs(d, 0700).ok());
    return d;
  }
  test_support::TempDir tmp_{"uid-pool"};
  std::string pool_ = tmp_.path() + "/uids";
};

TEST_F(UidPoolTest, LeasesAreUniqueAndSurviveANewPoolObject) {
  UidPool pool(pool_, {1000, 1002});
  auto a = pool.Acquire(Owner("a"));
  auto b = pool.Acquire(Owner("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, 1000u);
  EXPECT_EQ(*b, 1001u);
  // A plugin restart: a new pool object over the same directory sees the leases.
  UidPool again(pool_, {1000, 1002});
  auto c = again.Acquire(Owner("c"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 1002u);
  auto full = again.Acquire(Owner("d"));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(full.error().message().find("1000-1002"), std::string::npos);
}

TEST_F(UidPoolTest, ReleaseFreesOnlyTheOwnersLease) {
  UidPool pool(pool_, {1000, 1000});
  std::string a = Owner("a");
  ASSERT_TRUE(pool.Acquire(a).ok());
  ASSERT_TRUE(pool.Release(1000, Owner("someone-else")).ok());
  EXPECT_FALSE(pool.Acquire(Owner("b")).ok()) << "another owner's release freed the lease";
  ASSERT_TRUE(pool.Release(1000, a).ok());
  auto b = pool.Acquire(Owner("b"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, 1000u);
}

TEST_F(UidPoolTest, ALeaseWhoseOwnerIsGoneIsTakenBack) {
  UidPool pool(pool_, {1000, 1000});
  std::string crashed = Owner("crashed");
  ASSERT_TRUE(pool.Acquire(crashed).ok());
  ASSERT_TRUE(fs::RemoveTree(crashed).ok());  // the task dir went away without a Release (plugin crash)
  auto again = pool.Acquire(Owner("next"));
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, 1000u);
  EXPECT_EQ(*fs::ReadFile(pool_ + "/1000", 4096), tmp_.path() + "/next");
}

// Several processes taking leases at once (several plugin instances) never get the same uid.
TEST_F(UidPoolTest, ConcurrentProcessesGetDistinctUids) {
  constexpr int kProcs = 8;
  std::vector<std::string> owners;
  owners.reserve(kProcs);
  for (int i = 0; i < kProcs; i++) owners.push_back(Owner("o" + std::to_string(i)));
  std::vector<pid_t> pids;
  pids.reserve(kProcs);
  for (int i = 0; i < kProcs; i++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      UidPool pool(pool_, {5000, 5000 + kProcs - 1});
      _exit(pool.Acquire(owners[i]).ok() ? 0 : 1);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::set<std::string> holders;
  for (int uid = 5000; uid < 5000 + kProcs; uid++) {
    auto h = fs::ReadFile(pool_ + "/" + std::to_string(uid), 4096);
    ASSERT_TRUE(h.ok()) << uid;
    holders.insert(*h);
  }
  EXPECT_EQ(holders.size(), static_cast<size_t>(kProcs));
}

}  // namespace
}  // namespace nfc::sandbox
