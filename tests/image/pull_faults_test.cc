// Image pulls under faults (docs/reliability.md, "Image pulls"): a registry that misbehaves (through
// FaultProxy in front of Debian's docker-registry) and an image cache whose filesystem fills up (a small
// tmpfs in a mount namespace of the test's own). Each case checks what the caller of Store::Resolve gets
// (StartTask hands that error to Nomad: its code decides whether Nomad may retry, IsTransient), that the
// cache holds nothing half-made, and that the client kept no fd open. Timeouts and back-offs are shortened,
// so each case takes seconds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "image/cache_fs.h"
#include "image/store.h"
#include "registry_fixture.h"
#include "require.h"
#include "test_layers.h"

namespace nfc::image {
namespace {

using Fault = testing::FaultProxy::Fault;
using Clock = std::chrono::steady_clock;

int OpenFds() {
  auto names = ListDir("/proc/self/fd");
  return names.ok() ? static_cast<int>(names->size()) : -1;
}

// Incompressible bytes, so a gzip layer is about as large as its content.
std::string RandomBytes(size_t n) {
  std::mt19937_64 rng(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

class PullFaultsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/nfc-pull-faults.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto seed = testing::LocalRegistry::Start(dir_ + "/seed", "pusher", "push-pw");
    ASSERT_TRUE(seed.ok()) << seed.error().message();
    seed_ = seed->release();
    testing::TestImage tiny, big;
    tiny.layers.push_back({{{'f', "hello", 0755, "HELLO"}}, "gzip"});
    big.layers.push_back({{{'f', "data", 0644, RandomBytes(3 << 20)}}, "gzip"});
    auto digest = testing::WriteOciLayout(dir_ + "/layout", "tiny", {tiny});
    ASSERT_TRUE(digest.ok());
    tiny_digest_ = *digest;
    ASSERT_TRUE(testing::WriteOciLayout(dir_ + "/layout", "big", {big}).ok());
    for (const char* t : {"tiny", "big"}) {
      auto s = seed_->Push(dir_ + "/layout", t, std::string("test/") + t + ":1");
      ASSERT_TRUE(s.ok()) << s.error().message();
    }
    auto plain = testing::LocalRegistry::StartPlain(dir_ + "/plain", seed_->storage());
    ASSERT_TRUE(plain.ok()) << plain.error().message();
    plain_ = plain->release();
  }

  static void TearDownTestSuite() {
    delete plain_;
    plain_ = nullptr;
    delete seed_;
    seed_ = nullptr;
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  void SetUp() override {
    ASSERT_NE(plain_, nullptr);
    const std::string host = plain_->host();
    auto proxy = testing::FaultProxy::Start(std::stoi(host.substr(host.find(':') + 1)));
    ASSERT_TRUE(proxy.ok()) << proxy.error().message();
    proxy_ = std::move(*proxy);
    cache_ = dir_ + "/cache-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    if (!warmed_up_) {  // libcurl and OpenSSL open what they keep for good on first use
      auto store = Store::Open({dir_ + "/warm-up"});
      ASSERT_TRUE(store.ok());
      ASSERT_TRUE((*store)->Resolve(Ref("tiny"), Options()).ok());
      warmed_up_ = true;
    }
  }

  std::string Ref(const std::string& name) const { return proxy_->host() + "/test/" + name + ":1"; }

  static PullOptions Options() {
    PullOptions o;
    o.docker_config = dir_ + "/no-docker-config.json";
    o.timeout = std::chrono::seconds(60);
    o.activity_timeout = std::chrono::seconds(2);
    o.retry = {3, std::chrono::milliseconds(50)};
    return o;
  }

  // A pull into a fresh store at cache_, with the fd count of the process compared before and after.
  Result<ImageHandle> Pull(const std::string& ref, const PullOptions& o) {
    auto store = Store::Open({cache_});
    if (!store.ok()) return std::move(store).error();
    const int before = OpenFds();
    auto h = (*store)->Resolve(ref, o);
    EXPECT_TRUE(proxy_->WaitIdle());
    EXPECT_EQ(OpenFds(), before) << "the pull left fds open";
    return h;
  }

  // What StartTask would hand Nomad: the code, the message, and whether Nomad may retry the task.
  static void ExpectCallerSees(const Result<ImageHandle>& h, ErrorCode code, bool recoverable,
                               const std::vector<std::string>& words) {
    ASSERT_FALSE(h.ok());
    std::printf("caller sees: %s (%s): %s\n", std::string(ErrorCodeName(h.error().code())).c_str(),
                IsTransient(h.error().code()) ? "recoverable" : "not recoverable",
                h.error().message().c_str());
    EXPECT_EQ(h.error().code(), code) << h.error().message();
    EXPECT_EQ(IsTransient(h.error().code()), recoverable);
    for (const auto& w : words) EXPECT_NE(h.error().message().find(w), std::string::npos) << w;
  }

  // Nothing half-made: no image, no staging entry, and every blob is complete (its name is its digest).
  void ExpectNothingHalfMade(const std::string& cache) {
    auto store = Store::Open({cache});
    ASSERT_TRUE(store.ok());
    auto listed = (*store)->List();
    ASSERT_TRUE(listed.ok());
    EXPECT_TRUE(listed->empty()) << listed->front().manifest_digest;
    auto images = ListDir(cache + "/images");
    ASSERT_TRUE(images.ok());
    EXPECT_TRUE(images->empty());
    auto tmp = ListDir(cache + "/tmp");
    ASSERT_TRUE(tmp.ok());
    EXPECT_TRUE(tmp->empty()) << tmp->front();
    auto blobs = ListDir(cache + "/blobs/sha256");
    ASSERT_TRUE(blobs.ok());
    for (const auto& b : *blobs) {
      EXPECT_EQ(testing::Sha256Hex(testing::ReadFileOrDie(cache + "/blobs/sha256/" + b)), b);
    }
  }

  int Requests(const std::string& part) const {
    int n = 0;
    for (const auto& r : proxy_->requests()) n += r.path.find(part) != std::string::npos;
    return n;
  }

  static std::string dir_, tiny_digest_;
  static testing::LocalRegistry* seed_;
  static testing::LocalRegistry* plain_;
  static bool warmed_up_;
  std::unique_ptr<testing::FaultProxy> proxy_;
  std::string cache_;
};

std::string PullFaultsTest::dir_;
std::string PullFaultsTest::tiny_digest_;
testing::LocalRegistry* PullFaultsTest::seed_ = nullptr;
testing::LocalRegistry* PullFaultsTest::plain_ = nullptr;
bool PullFaultsTest::warmed_up_ = false;

TEST_F(PullFaultsTest, AStalledBodyIsRetriedAndThenTimesOutNamingPullActivityTimeout) {
  auto o = Options();
  o.activity_timeout = std::chrono::seconds(1);
  proxy_->Add({Fault::kStall, "/blobs/", 1});
  auto once = Pull(Ref("tiny"), o);
  ASSERT_TRUE(once.ok()) << once.error().message();
  EXPECT_EQ(proxy_->faults_injected(), 1);

  cache_ += "-always";
  proxy_->Add({Fault::kStall, "/blobs/"});
  o.retry.max_attempts = 2;
  auto h = Pull(Ref("tiny"), o);
  ExpectCallerSees(h, ErrorCode::kTimeout, true, {"pull_activity_timeout", "giving up after 2 attempts"});
  ExpectNothingHalfMade(cache_);
}

TEST_F(PullFaultsTest, ATricklingBodyEndsAtImagePullTimeout) {
  auto o = Options();
  o.timeout = std::chrono::seconds(2);
  o.activity_timeout = std::chrono::seconds(1);  // a byte every 100 ms is activity
  proxy_->Add({Fault::kTrickle, "/blobs/", -1, 0, "", 0, std::chrono::milliseconds(100)});
  auto start = Clock::now();
  auto h = Pull(Ref("tiny"), o);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  ExpectCallerSees(h, ErrorCode::kTimeout, true, {"image_pull_timeout (2 s) reached"});
  EXPECT_LT(took, std::chrono::seconds(12)) << "the deadline did not bound the pull";
  std::printf("trickling pull with a 2 s image_pull_timeout ended after %lld ms\n",
              static_cast<long long>(took.count()));
  ExpectNothingHalfMade(cache_);
}

TEST_F(PullFaultsTest, AConnectionResetMidBlobIsRetried) {
  proxy_->Add({Fault::kReset, "/blobs/", 1});
  auto once = Pull(Ref("tiny"), Options());
  ASSERT_TRUE(once.ok()) << once.error().message();
  EXPECT_EQ(proxy_->faults_injected(), 1);

  cache_ += "-always";
  proxy_->Add({Fault::kReset, "/blobs/"});
  auto h = Pull(Ref("tiny"), Options());
  ExpectCallerSees(h, ErrorCode::kUnavailable, true, {"giving up after 3 attempts", "reset"});
  ExpectNothingHalfMade(cache_);
}

TEST_F(PullFaultsTest, AContentLengthShorterThanTheBodyIsABrokenTransfer) {
  proxy_->Add({Fault::kContentLength, "/blobs/", 1, 0, "", -10});
  auto once = Pull(Ref("tiny"), Options());
  ASSERT_TRUE(once.ok()) << once.error().message();

  cache_ += "-always";
  proxy_->Add({Fault::kContentLength, "/blobs/", -1, 0, "", -10});
  auto h = Pull(Ref("tiny"), Options());
  ExpectCallerSees(h, ErrorCode::kUnavailable, true, {"giving up after 3 attempts", "Content-Length"});
  ExpectNothingHalfMade(cache_);
}

TEST_F(PullFaultsTest, AContentLengthLongerThanTheBodyIsABrokenTransfer) {
  proxy_->Add({Fault::kContentLength, "/blobs/", -1, 0, "", 10});
  auto h = Pull(Ref("tiny"), Options());
  ExpectCallerSees(h, ErrorCode::kUnavailable, true, {"giving up after 3 attempts", "Content-Length"});
  ExpectNothingHalfMade(cache_);
}

TEST_F(PullFaultsTest, AManifestWhoseDigestDoesNotMatchIsRefusedAndNotRetried) {
  proxy_->Add({Fault::kRewriteBody, "/manifests/"});
  const std::string by_digest = proxy_->host() + "/test/tiny@" + tiny_digest_;
  auto h = Pull(by_digest, Options());
  ExpectCallerSees(h, ErrorCode::kDataLoss, false, {"content has digest", tiny_digest_});
  EXPECT_EQ(Requests("/manifests/"), 1);
  ExpectNothingHalfMade(cache_);
  // By tag, the registry's Docker-Content-Digest is what the body must match.
  auto tag = Pull(Ref("tiny"), Options());
  ExpectCallerSees(tag, ErrorCode::kDataLoss, false, {"Docker-Content-Digest", tiny_digest_});
  ExpectNothingHalfMade(cache_);
}

TEST_F(PullFaultsTest, ABlobWhoseDigestDoesNotMatchIsRefusedAndNotRetried) {
  proxy_->Add({Fault::kFlipByte, "/blobs/"});
  auto h = Pull(Ref("tiny"), Options());
  ExpectCallerSees(h, ErrorCode::kDataLoss, false, {"digest mismatch"});
  EXPECT_EQ(Requests("/blobs/"), 1);
  ExpectNothingHalfMade(cache_);
  auto blobs = ListDir(cache_ + "/blobs/sha256");
  ASSERT_TRUE(blobs.ok());
  EXPECT_TRUE(blobs->empty());
}

TEST_F(PullFaultsTest, ATokenThatExpiresMidPullIsRenewedOnce) {
  proxy_->RequireBearer();
  proxy_->Add({Fault::kExpireToken, "/blobs/", 1});
  auto h = Pull(Ref("tiny"), Options());
  ASSERT_TRUE(h.ok()) << h.error().message();
  EXPECT_EQ(proxy_->token_requests(), 2);  // the first challenge, and the one after the expiry

  // A registry that refuses every renewed token too: one renewal, then the refusal, no loop.
  cache_ += "-refused";
  auto proxy = testing::FaultProxy::Start(std::stoi(plain_->host().substr(plain_->host().find(':') + 1)));
  ASSERT_TRUE(proxy.ok());
  proxy_ = std::move(*proxy);
  proxy_->RequireBearer();
  proxy_->Add({Fault::kExpireToken, "/blobs/"});
  auto refused = Pull(Ref("tiny"), Options());
  ExpectCallerSees(refused, ErrorCode::kUnauthenticated, false, {"refused", "401"});
  EXPECT_EQ(proxy_->token_requests(), 2);
  ExpectNothingHalfMade(cache_);
}

TEST_F(PullFaultsTest, RateLimitsHonourRetryAfterAndEndInAClearError) {
  proxy_->Add({Fault::kStatus, "/manifests/", 1, 429, "Retry-After: 1\r\n"});
  auto once = Pull(Ref("tiny"), Options());
  ASSERT_TRUE(once.ok()) << once.error().message();
  auto seen = proxy_->requests();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_GE(seen[1].at - seen[0].at, std::chrono::milliseconds(950)) << "Retry-After: 1 was not honoured";

  cache_ += "-always";
  proxy_->Add({Fault::kStatus, "/manifests/", -1, 429, "Retry-After: 1\r\n"});
  auto o = Options();
  o.retry.max_attempts = 2;
  auto h = Pull(Ref("tiny"), o);
  ExpectCallerSees(h, ErrorCode::kResourceExhausted, true, {"rate limit (429", "giving up after 2 attempts"});
  ExpectNothingHalfMade(cache_);

  // A Retry-After beyond the pull's deadline is not waited for.
  proxy_->Clear();
  proxy_->Add({Fault::kStatus, "/manifests/", -1, 429, "Retry-After: 3600\r\n"});
  auto start = Clock::now();
  auto late = Pull(Ref("tiny"), o);
  ExpectCallerSees(late, ErrorCode::kResourceExhausted, true, {"retry after 3600 s", "image_pull_timeout"});
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(30));
}

TEST_F(PullFaultsTest, ServerErrorsAreRetriedAndThenReported) {
  proxy_->Add({Fault::kStatus, "/blobs/", 2, 503});
  auto once = Pull(Ref("tiny"), Options());
  ASSERT_TRUE(once.ok()) << once.error().message();
  EXPECT_EQ(proxy_->faults_injected(), 2);

  cache_ += "-always";
  proxy_->Add({Fault::kStatus, "/blobs/", -1, 503});
  auto h = Pull(Ref("tiny"), Options());
  ExpectCallerSees(h, ErrorCode::kUnavailable, true, {"giving up after 3 attempts", "503"});
  ExpectNothingHalfMade(cache_);
}

// The last write of a pull, the file recording which image the reference names, fails (here: a directory is
// in its way): the pull still succeeds, since the image and its lease are complete, and the next pull of the
// reference asks the registry again.
TEST_F(PullFaultsTest, AReferenceThatCannotBeRecordedDoesNotFailACompletePull) {
  auto first = Pull(Ref("tiny"), Options());
  ASSERT_TRUE(first.ok()) << first.error().message();
  auto refs = ListDir(cache_ + "/refs");
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->size(), 1u);
  cache_ += "-blocked";
  ASSERT_TRUE(MakeDirs(cache_ + "/refs/" + refs->front() + "/in-the-way").ok());
  auto o = Options();
  o.lease_holder = "alloc-1/web";
  auto h = Pull(Ref("tiny"), o);
  ASSERT_TRUE(h.ok()) << h.error().message();
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto listed = (*store)->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().lease_holders, std::vector<std::string>{"alloc-1/web"});
  const int manifests = Requests("/manifests/");
  ASSERT_TRUE(Pull(Ref("tiny"), Options()).ok());
  EXPECT_EQ(Requests("/manifests/"), manifests + 1) << "without the reference file the registry is asked";
}

// The cache on a tmpfs of the test's own, in a mount namespace of this thread (the pull runs on it): the
// mount disappears with the process whatever happens, and is unmounted at the end of each case.
class SmallDisk {
 public:
  static Result<std::unique_ptr<SmallDisk>> Mount(const std::string& dir, const std::string& size) {
    if (::unshare(CLONE_NEWNS) != 0) return Error::Errno("unshare(CLONE_NEWNS)");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return Error::Errno("make / private");
    NFC_RETURN_IF_ERROR(MakeDirs(dir));
    if (::mount("nfc-test", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) {
      return Error::Errno("mount tmpfs on " + dir);
    }
    auto d = std::make_unique<SmallDisk>();
    d->dir_ = dir;
    return d;
  }
  ~SmallDisk() { ::umount2(dir_.c_str(), MNT_DETACH); }
  Status Resize(const std::string& size) {
    if (::mount("nfc-test", dir_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) != 0) {
      return Error::Errno("remount " + dir_);
    }
    return Ok();
  }

 private:
  std::string dir_;
};

TEST_F(PullFaultsTest, TheDiskFillsWhileABlobIsWritten) {
  NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "root, to mount a small tmpfs for the image cache");
  auto disk = SmallDisk::Mount(cache_, "1m");
  ASSERT_TRUE(disk.ok()) << disk.error().message();
  auto h = Pull(Ref("big"), Options());
  ExpectCallerSees(
      h, ErrorCode::kResourceExhausted, true,
      {"image cache " + cache_ + " ran out of space", "write blob sha256:", "No space left on device"});
  ExpectNothingHalfMade(cache_);
  ASSERT_TRUE((*disk)->Resize("64m").ok());
  auto again = Pull(Ref("big"), Options());
  ASSERT_TRUE(again.ok()) << again.error().message();
}

TEST_F(PullFaultsTest, TheDiskFillsWhileTheRootFilesystemIsBuilt) {
  NFC_REQUIRE_OR_SKIP(::geteuid() == 0, "root, to mount a small tmpfs for the image cache");
  // The 3 MiB layer fits, the 3 MiB of file data read out of it (spooled until the image is written) not.
  auto disk = SmallDisk::Mount(cache_, "5m");
  ASSERT_TRUE(disk.ok()) << disk.error().message();
  auto h = Pull(Ref("big"), Options());
  ExpectCallerSees(h, ErrorCode::kResourceExhausted, true,
                   {"image cache " + cache_ + " ran out of space", "spool in " + cache_ + "/tmp/",
                    "No space left on device"});
  ExpectNothingHalfMade(cache_);
  ASSERT_TRUE((*disk)->Resize("64m").ok());
  auto again = Pull(Ref("big"), Options());
  ASSERT_TRUE(again.ok()) << again.error().message();
}

}  // namespace
}  // namespace nfc::image
