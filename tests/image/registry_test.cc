// Pulls from a real registry (Debian's docker-registry on loopback, TLS with a per-run CA, htpasswd auth):
// conversion result, multi-platform index, zstd layers, errors, and single flight across concurrent pulls.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ext4_snapshot.h"
#include "image/cache_fs.h"
#include "image/store.h"
#include "registry_fixture.h"
#include "test_layers.h"

namespace nfc::image {
namespace {

using testing::TestImage;

std::string Sha(const std::string& s) {
  return testing::Sha256Hex(s).substr(0, 12);
}

class RegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/nfc-registry-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto reg = testing::LocalRegistry::Start(dir_ + "/registry", "alice", "s3cret");
    ASSERT_TRUE(reg.ok()) << reg.error().message();
    registry_ = reg->release();
    const std::string layout = dir_ + "/layout";
    const std::string cap("\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                          20);
    // app: three layers (gzip, zstd, plain) with whiteouts, an opaque dir, links, caps and setuid.
    TestImage app;
    app.layers.push_back({{{'d', "bin/", 0755},
                           {'f', "bin/busybox", 0755, "BUSYBOX"},
                           {'h', "bin/sh", 0755, "bin/busybox"},  // the link header chmods the inode
                           {'l', "bin/ls", 0777, "busybox"},
                           {'f', "etc/passwd", 0644, "root:x:0:0::/:/bin/sh\n"},
                           {'f', "etc/motd", 0644, "old"},
                           {'f', "var/lib/x/old", 0644, "old"},
                           {'f', "usr/bin/ping", 0755, "PING", 0, 0, {{"security.capability", cap}}}},
                          "gzip"});
    app.layers.push_back({{{'f', "etc/.wh.motd", 0},
                           {'d', "var/lib/x/", 0755},
                           {'f', "var/lib/x/.wh..wh..opq", 0},
                           {'f', "var/lib/x/new", 0600, "new", 1000, 1000},
                           {'f', "usr/bin/passwd", 04755, "PASSWD"}},
                          "zstd"});
    app.layers.push_back({{{'f', "srv/data", 0644, std::string(200000, 'z')}}, ""});
    app.config_json = R"({"config":{"Entrypoint":["/bin/sh"],"Cmd":["-c","echo hi"],"Env":["PATH=/bin"],
      "WorkingDir":"/srv","User":"1000","ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"}}})";
    ASSERT_TRUE(testing::WriteOciLayout(layout, "app", {app}).ok());
    // multi: an index with amd64 and arm64 images that differ in one file.
    TestImage amd, arm;
    amd.layers.push_back({{{'f', "arch", 0644, "amd64"}}, "gzip"});
    arm.layers.push_back({{{'f', "arch", 0644, "arm64"}}, "gzip"});
    arm.architecture = "arm64";
    ASSERT_TRUE(testing::WriteOciLayout(layout, "multi", {amd, arm}).ok());
    // tiny: one static file, no /etc.
    TestImage tiny;
    tiny.layers.push_back({{{'f', "hello", 0755, "HELLO"}}, "gzip"});
    ASSERT_TRUE(testing::WriteOciLayout(layout, "tiny", {tiny}).ok());
    TestImage tiny2;  // for the concurrency test (never pulled before it)
    tiny2.layers.push_back({{{'f', "a", 0644, std::string(300000, 'a')}}, "gzip"});
    tiny2.layers.push_back({{{'f', "b", 0644, "b"}}, "zstd"});
    ASSERT_TRUE(testing::WriteOciLayout(layout, "conc", {tiny2}).ok());
    TestImage corrupt;
    corrupt.layers.push_back({{{'f', "c", 0644, "will be corrupted in the registry"}}, "gzip"});
    ASSERT_TRUE(testing::WriteOciLayout(layout, "corrupt", {corrupt}).ok());
    for (const char* t : {"app", "multi", "tiny", "conc", "corrupt"}) {
      auto s = registry_->Push(layout, t, std::string("test/") + t + ":1");
      ASSERT_TRUE(s.ok()) << s.error().message();
    }
  }

  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  void SetUp() override {
    ASSERT_NE(registry_, nullptr);
    cache_ = dir_ + "/cache-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  PullOptions Options(std::string password = "s3cret") {
    PullOptions o;
    o.auth = RegistryAuth{"alice", std::move(password), ""};
    o.ca_file = registry_->ca_file();
    o.docker_config = dir_ + "/no-docker-config.json";
    o.timeout = std::chrono::seconds(120);
    return o;
  }

  // The cache holds no image, blob or staging file (after a failed pull).
  void ExpectNoPartialEntries() {
    auto images = ListDir(cache_ + "/images");
    ASSERT_TRUE(images.ok());
    EXPECT_TRUE(images->empty());
    auto tmp = ListDir(cache_ + "/tmp");
    ASSERT_TRUE(tmp.ok());
    EXPECT_TRUE(tmp->empty()) << (*tmp)[0];
  }

  static std::string dir_;
  static testing::LocalRegistry* registry_;
  std::string cache_;
};

std::string RegistryTest::dir_;
testing::LocalRegistry* RegistryTest::registry_ = nullptr;

TEST_F(RegistryTest, PullsMultiLayerImageOverTlsWithBasicAuthAndBuildsTheExactTree) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  std::vector<Progress::Phase> phases;
  auto h = (*store)->Resolve(registry_->host() + "/test/app:1", Options(),
                             [&](const Progress& p) { phases.push_back(p.phase); });
  ASSERT_TRUE(h.ok()) << h.error().message();
  EXPECT_NE(std::find(phases.begin(), phases.end(), Progress::Phase::kDownloading), phases.end());
  EXPECT_NE(std::find(phases.begin(), phases.end(), Progress::Phase::kBuildingRootfs), phases.end());
  ASSERT_TRUE(testing::CheckExt4(h->rootfs_path).ok())
      << testing::CheckExt4(h->rootfs_path).error().message();
  auto snap = testing::SnapshotExt4(h->rootfs_path);
  ASSERT_TRUE(snap.ok());
  const std::string t = " mtime=1700000000.0";
  std::map<std::string, std::string> want = {
      {"/bin", "dir 0755 0:0 nlink=2" + t},
      {"/bin/busybox", "file 0755 0:0 nlink=2 ino=#0 size=7 sha=" + Sha("BUSYBOX") + t},
      {"/bin/sh", "file 0755 0:0 nlink=2 ino=#0 size=7 sha=" + Sha("BUSYBOX") + t},
      {"/bin/ls", "symlink 0777 0:0 nlink=1 -> busybox" + t},
      {"/etc", "dir 0755 0:0 nlink=2 mtime=0.0"},
      {"/etc/passwd", "file 0644 0:0 nlink=1 size=22 sha=" + Sha("root:x:0:0::/:/bin/sh\n") + t},
      {"/var", "dir 0755 0:0 nlink=3 mtime=0.0"},
      {"/var/lib", "dir 0755 0:0 nlink=3 mtime=0.0"},
      {"/var/lib/x", "dir 0755 0:0 nlink=2" + t},
      {"/var/lib/x/new", "file 0600 1000:1000 nlink=1 size=3 sha=" + Sha("new") + t},
      {"/usr", "dir 0755 0:0 nlink=3 mtime=0.0"},
      {"/usr/bin", "dir 0755 0:0 nlink=2 mtime=0.0"},
      {"/usr/bin/ping", "file 0755 0:0 nlink=1 size=4 sha=" + Sha("PING") +
                            " x:security.capability=0100000200040000000000000000000000000000" + t},
      {"/usr/bin/passwd", "file 4755 0:0 nlink=1 size=6 sha=" + Sha("PASSWD") + t},
      {"/srv", "dir 0755 0:0 nlink=2 mtime=0.0"},
      {"/srv/data", "file 0644 0:0 nlink=1 size=200000 sha=" + Sha(std::string(200000, 'z')) + t},
  };
  EXPECT_EQ(*snap, want);
  EXPECT_EQ(h->config.entrypoint, (std::vector<std::string>{"/bin/sh"}));
  EXPECT_EQ(h->config.cmd, (std::vector<std::string>{"-c", "echo hi"}));
  EXPECT_EQ(h->config.working_dir, "/srv");
  EXPECT_EQ(h->config.user, "1000");
  EXPECT_EQ(h->config.exposed_ports, (std::vector<std::string>{"80/tcp"}));
  EXPECT_TRUE(PathExists(h->config_path));

  // Cached: a second resolve, even with a wrong password, needs no registry.
  auto again = (*store)->Resolve(registry_->host() + "/test/app:1", Options("wrong"));
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->manifest_digest, h->manifest_digest);
  // force_pull re-resolves at the registry (and here fails on the wrong password).
  auto forced_opts = Options("wrong");
  forced_opts.force_pull = true;
  EXPECT_FALSE((*store)->Resolve(registry_->host() + "/test/app:1", forced_opts).ok());
  forced_opts = Options();
  forced_opts.force_pull = true;
  auto forced = (*store)->Resolve(registry_->host() + "/test/app:1", forced_opts);
  ASSERT_TRUE(forced.ok()) << forced.error().message();
  EXPECT_EQ(forced->manifest_digest, h->manifest_digest);
}

TEST_F(RegistryTest, SelectsThePlatformFromAMultiPlatformIndex) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto o = Options();
  o.platform = "linux/arm64";
  auto arm = (*store)->Resolve(registry_->host() + "/test/multi:1", o);
  ASSERT_TRUE(arm.ok()) << arm.error().message();
  o.platform = "linux/amd64";
  auto amd = (*store)->Resolve(registry_->host() + "/test/multi:1", o);
  ASSERT_TRUE(amd.ok()) << amd.error().message();
  EXPECT_NE(arm->manifest_digest, amd->manifest_digest);
  EXPECT_EQ(
      testing::SnapshotExt4(arm->rootfs_path)->at("/arch").find("sha=" + Sha("arm64")) != std::string::npos,
      true);
  EXPECT_EQ(
      testing::SnapshotExt4(amd->rootfs_path)->at("/arch").find("sha=" + Sha("amd64")) != std::string::npos,
      true);
  o.platform = "linux/s390x";
  auto none = (*store)->Resolve(registry_->host() + "/test/multi:1", o);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("linux/s390x"), std::string::npos) << none.error().message();
}

TEST_F(RegistryTest, TinyImageWithoutEtc) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(registry_->host() + "/test/tiny:1", Options());
  ASSERT_TRUE(h.ok()) << h.error().message();
  auto snap = testing::SnapshotExt4(h->rootfs_path);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->size(), 1u);
  EXPECT_TRUE(snap->count("/hello"));
}

TEST_F(RegistryTest, WrongPasswordIsAClearErrorAndLeavesNothing) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(registry_->host() + "/test/app:1", Options("wrong"));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code(), ErrorCode::kUnauthenticated) << h.error().message();
  EXPECT_NE(h.error().message().find("alice"), std::string::npos) << h.error().message();
  ExpectNoPartialEntries();
  PullOptions anonymous = Options();
  anonymous.auth.reset();
  auto anon = (*store)->Resolve(registry_->host() + "/test/app:1", anonymous);
  ASSERT_FALSE(anon.ok());
  EXPECT_NE(anon.error().message().find("requires credentials"), std::string::npos) << anon.error().message();
}

TEST_F(RegistryTest, CredentialsFromDockerConfig) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  std::string cfg = dir_ + "/docker-config.json";
  // base64("alice:s3cret")
  testing::WriteFileOrDie(cfg, R"({"auths":{")" + registry_->host() + R"(":{"auth":"YWxpY2U6czNjcmV0"}}})");
  PullOptions o = Options();
  o.auth.reset();
  o.docker_config = cfg;
  auto h = (*store)->Resolve(registry_->host() + "/test/tiny:1", o);
  ASSERT_TRUE(h.ok()) << h.error().message();
}

TEST_F(RegistryTest, MissingManifestIsNotFound) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(registry_->host() + "/test/app:does-not-exist", Options());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code(), ErrorCode::kNotFound) << h.error().message();
  EXPECT_NE(h.error().message().find("does-not-exist"), std::string::npos) << h.error().message();
  ExpectNoPartialEntries();
}

TEST_F(RegistryTest, UntrustedCertificateIsRefused) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  PullOptions o = Options();
  o.ca_file.clear();  // the system store does not know the test CA; loopback must not silently downgrade TLS
  auto h = (*store)->Resolve(registry_->host() + "/test/tiny:1", o);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message().find("certificate"), std::string::npos) << h.error().message();
  ExpectNoPartialEntries();
}

TEST_F(RegistryTest, CorruptedBlobInRegistryStorageIsDetected) {
  // Find the layer of test/corrupt by its repository link and overwrite the stored data.
  std::string repo_layers =
      registry_->storage() + "/docker/registry/v2/repositories/test/corrupt/_layers/sha256";
  auto layers = ListDir(repo_layers);
  ASSERT_TRUE(layers.ok());
  std::string victim;
  for (const auto& hex : *layers) {
    std::string data =
        registry_->storage() + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
    std::string content = testing::ReadFileOrDie(data);
    if (content.size() > 2 &&
        static_cast<unsigned char>(content[0]) == 0x1f) {  // the gzip layer, not the config
      content[content.size() / 2] ^= 0x55;
      testing::WriteFileOrDie(data, content);
      victim = hex;
    }
  }
  ASSERT_FALSE(victim.empty());
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(registry_->host() + "/test/corrupt:1", Options());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code(), ErrorCode::kDataLoss) << h.error().message();
  EXPECT_NE(h.error().message().find("digest mismatch"), std::string::npos) << h.error().message();
  EXPECT_FALSE(PathExists(cache_ + "/blobs/sha256/" + victim));
  ExpectNoPartialEntries();
}

TEST_F(RegistryTest, TenConcurrentPullsDownloadEachBlobOnce) {
  const std::string ref = registry_->host() + "/test/conc:1";
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<std::string> digests(10);
  threads.reserve(10);
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&, i] {
      auto store =
          Store::Open({cache_});  // one Store per thread: the locks are the files, as across processes
      if (!store.ok()) return;
      auto h = (*store)->Resolve(ref, Options());
      if (h.ok()) {
        ++ok;
        digests[i] = h->manifest_digest;
      } else {
        ADD_FAILURE() << h.error().message();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 10);
  for (const auto& d : digests) EXPECT_EQ(d, digests[0]);
  auto meta = ReadWholeFile(cache_ + "/images/" + digests[0].substr(7) + "/manifest.json");
  ASSERT_TRUE(meta.ok());
  auto blobs = ListDir(cache_ + "/blobs/sha256");
  ASSERT_TRUE(blobs.ok());
  ASSERT_EQ(blobs->size(), 3u);  // config + 2 layers
  for (const auto& b : *blobs) {
    EXPECT_EQ(registry_->CountBlobGets("sha256:" + b), 1)
        << "blob sha256:" << b << " downloaded more than once";
  }
  std::printf("single flight: 10 concurrent pulls, blob GETs per blob:");
  for (const auto& b : *blobs) std::printf(" %d", registry_->CountBlobGets("sha256:" + b));
  std::printf("\n");
}

TEST_F(RegistryTest, UnsupportedLayerMediaTypeFromAnOciLayout) {
  // An OCI layout whose manifest declares a bzip2 layer (not a type OCI images may use).
  std::string layout = dir_ + "/odd-layout";
  TestImage img;
  img.layers.push_back({{{'f', "x", 0644, "x"}}, "gzip"});
  auto digest = testing::WriteOciLayout(layout, "odd", {img});
  ASSERT_TRUE(digest.ok());
  std::string old_hex = digest->substr(7);
  std::string manifest = testing::ReadFileOrDie(layout + "/blobs/sha256/" + old_hex);
  std::string edited = manifest;
  edited.replace(edited.find("tar+gzip"), 8, "tar+bzip2");
  std::string new_hex = testing::Sha256Hex(edited);
  testing::WriteFileOrDie(layout + "/blobs/sha256/" + new_hex, edited);
  std::string index = testing::ReadFileOrDie(layout + "/index.json");
  index.replace(index.find(old_hex), old_hex.size(), new_hex);
  index.replace(index.find("\"size\":" + std::to_string(manifest.size())),
                7 + std::to_string(manifest.size()).size(), "\"size\":" + std::to_string(edited.size()));
  testing::WriteFileOrDie(layout + "/index.json", index);
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve("oci:" + layout + ":odd", Options());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code(), ErrorCode::kUnimplemented) << h.error().message();
  EXPECT_NE(h.error().message().find("tar+bzip2"), std::string::npos) << h.error().message();
  ExpectNoPartialEntries();
  // The unedited image from the same kind of layout imports fine.
  auto ok_digest = testing::WriteOciLayout(layout, "good", {img});
  ASSERT_TRUE(ok_digest.ok());
  auto good = (*store)->Resolve("oci:" + layout + ":good", Options());
  ASSERT_TRUE(good.ok()) << good.error().message();
  EXPECT_TRUE(testing::SnapshotExt4(good->rootfs_path)->count("/x"));
}

TEST_F(RegistryTest, ALayerListedTwiceIsFetchedOnceAndAppliedTwice) {
  // Identical layers give one digest, listed twice in the manifest (a build that repeats a step). The cache
  // locks each blob while it is fetched: the second listing must not wait for the first's lock.
  std::string layout = dir_ + "/twice-layout";
  TestImage img;
  img.layers.push_back({{{'f', "same", 0644, "one"}}, ""});
  img.layers.push_back({{{'f', "other", 0644, "two"}}, ""});
  img.layers.push_back({{{'f', "same", 0644, "one"}}, ""});
  ASSERT_TRUE(testing::WriteOciLayout(layout, "twice", {img}).ok());
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve("oci:" + layout + ":twice", Options());
  ASSERT_TRUE(h.ok()) << h.error().message();
  auto snap = testing::SnapshotExt4(h->rootfs_path);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->size(), 2u);
  EXPECT_TRUE(snap->count("/same") && snap->count("/other"));
}

TEST_F(RegistryTest, RetriesServerErrorsAndReportsTruncatedTransfers) {
  auto plain = testing::LocalRegistry::StartPlain(dir_ + "/plain", registry_->storage());
  ASSERT_TRUE(plain.ok()) << plain.error().message();
  std::string plain_host = (*plain)->host();
  auto proxy = testing::FaultProxy::Start(std::stoi(plain_host.substr(plain_host.find(':') + 1)));
  ASSERT_TRUE(proxy.ok()) << proxy.error().message();
  const std::string host = "127.0.0.1:" + std::to_string((*proxy)->port());
  PullOptions o;
  o.docker_config = dir_ + "/no-docker-config.json";
  o.timeout = std::chrono::seconds(120);

  // 500 twice on the manifest and once on every blob, then success.
  (*proxy)->FailFirst("/manifests/", 2);
  (*proxy)->FailFirst("/blobs/", 1);
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(host + "/test/tiny:1", o);
  ASSERT_TRUE(h.ok()) << h.error().message();
  EXPECT_EQ((*proxy)->faults_injected(), 3);

  // Every transfer of the app image's blobs is cut in half: a clear error after the retries, nothing cached.
  (*proxy)->Truncate("/blobs/");
  auto store2 = Store::Open({cache_ + "-truncated"});
  ASSERT_TRUE(store2.ok());
  auto t = (*store2)->Resolve(host + "/test/app:1", o);
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(t.error().message().find("truncated") != std::string::npos ||
              t.error().message().find("transfer closed") != std::string::npos)
      << t.error().message();
  cache_ += "-truncated";
  ExpectNoPartialEntries();
  auto blobs = ListDir(cache_ + "/blobs/sha256");
  ASSERT_TRUE(blobs.ok());
  EXPECT_TRUE(blobs->empty());
}

TEST_F(RegistryTest, ImportsADockerSaveArchive) {
  // The legacy `docker save` layout: manifest.json, <config>.json, <id>/layer.tar (uncompressed).
  std::string work = dir_ + "/docker-save";
  ASSERT_TRUE(testing::RunCommand({"mkdir", "-p", work}).ok());
  ASSERT_TRUE(
      testing::WriteLayer(work + "/l0.tar", {{'f', "bin/app", 0755, "APP"}, {'f', "etc/x", 0644, "x"}}, "")
          .ok());
  ASSERT_TRUE(testing::WriteLayer(work + "/l1.tar", {{'f', "etc/.wh.x", 0}}, "gzip").ok());
  std::string config = R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/app"]},"rootfs":{}})";
  std::string manifest =
      R"([{"Config":"cfg.json","RepoTags":["app:1"],"Layers":["a/layer.tar","b/layer.tar"]}])";
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, (work + "/image.tar").c_str()), ARCHIVE_OK);
  auto add = [&](const std::string& name, const std::string& data) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_write_header(a, e);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  };
  add("a/layer.tar", testing::ReadFileOrDie(work + "/l0.tar"));
  add("b/layer.tar", testing::ReadFileOrDie(work + "/l1.tar"));
  add("cfg.json", config);
  add("manifest.json", manifest);
  archive_write_close(a);
  archive_write_free(a);
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve("docker-archive:" + work + "/image.tar:app:1", PullOptions{});
  ASSERT_TRUE(h.ok()) << h.error().message();
  auto snap = testing::SnapshotExt4(h->rootfs_path);
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->count("/bin/app"));
  EXPECT_FALSE(snap->count("/etc/x"));
  EXPECT_EQ(h->config.cmd, (std::vector<std::string>{"/bin/app"}));
  auto missing = (*store)->Resolve("docker-archive:" + work + "/image.tar:other:2", PullOptions{});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("other:2"), std::string::npos) << missing.error().message();
  auto tmp = ListDir(cache_ + "/tmp");
  ASSERT_TRUE(tmp.ok());
  EXPECT_TRUE(tmp->empty());
}

TEST_F(RegistryTest, LeasesKeepImagesFromGarbageCollection) {
  auto store = Store::Open({cache_, 1});  // a 1-byte budget: everything unleased goes
  ASSERT_TRUE(store.ok());
  PullOptions o = Options();
  o.lease_holder = "alloc-1/web";
  auto h = (*store)->Resolve(registry_->host() + "/test/tiny:1", o);
  ASSERT_TRUE(h.ok()) << h.error().message();
  EXPECT_TRUE(PathExists(h->rootfs_path)) << "a leased image survives the size limit";
  auto rm = (*store)->Remove(h->manifest_digest);
  ASSERT_FALSE(rm.ok());
  EXPECT_NE(rm.error().message().find("alloc-1/web"), std::string::npos);
  // A new Store (a restarted plugin) still sees the lease.
  auto store2 = Store::Open({cache_, 1});
  ASSERT_TRUE(store2.ok());
  auto pr = (*store2)->Prune(true);
  ASSERT_TRUE(pr.ok());
  EXPECT_TRUE(PathExists(h->rootfs_path));
  ASSERT_TRUE((*store2)->ReleaseLease(h->manifest_digest, "alloc-1/web").ok());
  pr = (*store2)->Prune(true);
  ASSERT_TRUE(pr.ok());
  EXPECT_FALSE(PathExists(h->rootfs_path));
  EXPECT_EQ(pr->removed_images.size(), 1u);
}

// The plugin's image GC (gc { image_delay }): an image goes once no task has held it for the delay; images no
// task ever leased (pulled by hand) stay.
TEST_F(RegistryTest, CollectUnusedRemovesImagesTasksNoLongerHoldAfterTheDelay) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  PullOptions leased = Options();
  leased.lease_holder = "alloc-2/web";
  auto used = (*store)->Resolve(registry_->host() + "/test/tiny:1", leased);
  ASSERT_TRUE(used.ok()) << used.error().message();
  auto by_hand = (*store)->Resolve(registry_->host() + "/test/app:1", Options());
  ASSERT_TRUE(by_hand.ok()) << by_hand.error().message();

  auto none = (*store)->CollectUnused(std::chrono::milliseconds(0));
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(none->removed_images.empty()) << "a leased image is in use";

  ASSERT_TRUE((*store)->ReleaseLease(used->manifest_digest, "alloc-2/web").ok());
  auto early = (*store)->CollectUnused(std::chrono::hours(1));
  ASSERT_TRUE(early.ok()) << early.error().message();
  EXPECT_TRUE(early->removed_images.empty()) << "released just now: the delay has not passed";
  EXPECT_TRUE(PathExists(used->rootfs_path));

  auto due = (*store)->CollectUnused(std::chrono::milliseconds(0));
  ASSERT_TRUE(due.ok()) << due.error().message();
  EXPECT_EQ(due->removed_images, std::vector<std::string>{used->manifest_digest});
  EXPECT_GT(due->freed_bytes, 0u);
  EXPECT_FALSE(PathExists(used->rootfs_path));
  EXPECT_FALSE(PathExists(cache_ + "/leases/" + used->manifest_digest.substr(7)));
  EXPECT_TRUE(PathExists(by_hand->rootfs_path)) << "never leased: left to image_cache_size and prune";
  auto again = (*store)->CollectUnused(std::chrono::milliseconds(0));
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_TRUE(again->removed_images.empty());
}

}  // namespace
}  // namespace nfc::image
