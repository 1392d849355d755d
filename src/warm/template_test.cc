// The template store without a VM: keys, builds (with a stand-in boot), one build per key, stale templates.
// Building a real template is covered by the lifecycle suite with warm start on (tests/lifecycle).
#include "warm/template.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include "base/fs.h"
#include "temp_dir.h"
#include "warm/build_queue.h"
#include "warm/template_boot.h"

namespace nfc::warm {
namespace {

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

class TemplateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"qemu", "vmlinux", "initramfs", "rootfs.ext4"}) Write(root_.Path(name), name);
    in_.backend = vmm::Backend::kQemu;
    in_.vmm_binary = root_.Path("qemu");
    in_.kernel_path = root_.Path("vmlinux");
    in_.base_initrd_path = root_.Path("initramfs");
    in_.rootfs_path = root_.Path("rootfs.ext4");
    in_.image_digest = "sha256:aa";
    in_.vcpus = 1;
    in_.memory_mib = 256;
    in_.scratch_bytes = 1 << 30;
  }

  // A boot that writes what a real one leaves: the initramfs and the snapshot.
  BootFn FakeBoot(bool firecracker = false) {
    return [this, firecracker](const TemplateInputs&, const std::string& dir,
                               const BuildOptions&) -> Result<BootResult> {
      boots_++;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // long enough for callers to overlap
      Write(dir + "/" + std::string(kInitrdName), "template initramfs");
      Write(dir + "/" + std::string(kStateName), "state");
      if (firecracker) Write(dir + "/" + std::string(kMemoryName), "memory");
      return BootResult{firecracker, 50};
    };
  }

  test_support::TempDir root_{"warm-template"};
  TemplateInputs in_;
  std::atomic<int> boots_{0};
};

TEST_F(TemplateStoreTest, EveryInputIsPartOfTheKey) {
  auto base = TemplateKey(in_);
  ASSERT_TRUE(base.ok()) << base.error().message();
  EXPECT_EQ(base->size(), 32u);
  EXPECT_EQ(*TemplateKey(in_), *base) << "the key is stable";
  std::vector<std::pair<std::string, std::function<void(TemplateInputs&)>>> changes = {
      {"backend", [](TemplateInputs& i) { i.backend = vmm::Backend::kFirecracker; }},
      {"vcpus", [](TemplateInputs& i) { i.vcpus = 2; }},
      {"memory", [](TemplateInputs& i) { i.memory_mib = 512; }},
      {"image", [](TemplateInputs& i) { i.image_digest = "sha256:bb"; }},
      {"scratch", [](TemplateInputs& i) { i.scratch_bytes = 2u << 30; }},
      {"kernel args", [](TemplateInputs& i) { i.kernel_args = {"quiet"}; }},
      {"KVM", [](TemplateInputs& i) { i.kvm = true; }},
      {"a network interface", [](TemplateInputs& i) { i.nics = 1; }},
      {"a volume",
       [](TemplateInputs& i) {
         i.volumes = {{64 << 20, false}};
       }},
      {"a read-only volume",
       [](TemplateInputs& i) {
         i.volumes = {{64 << 20, true}};
       }},
      {"a larger volume",
       [](TemplateInputs& i) {
         i.volumes = {{128 << 20, false}};
       }},
      {"two volumes",
       [](TemplateInputs& i) {
         i.volumes = {{64 << 20, false}, {64 << 20, false}};
       }},
      {"another kernel", [this](TemplateInputs& i) {
         Write(root_.Path("vmlinux2"), "vmlinux");
         i.kernel_path = root_.Path("vmlinux2");
       }}};
  std::map<std::string, std::string> seen = {{*base, "the base"}};
  for (auto& [what, change] : changes) {
    TemplateInputs changed = in_;
    change(changed);
    auto key = TemplateKey(changed);
    ASSERT_TRUE(key.ok()) << what;
    auto [it, fresh] = seen.emplace(*key, what);
    EXPECT_TRUE(fresh) << what << " gives the key of " << it->second;
  }
  // The same path with new contents (a rebuilt kernel) is a new key too.
  Write(in_.kernel_path, "a rebuilt kernel");
  EXPECT_NE(*TemplateKey(in_), *base);
}

TEST_F(TemplateStoreTest, AMissingInputFileIsNamed) {
  in_.kernel_path = root_.Path("absent");
  auto key = TemplateKey(in_);
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.error().message().find("kernel_path: " + root_.Path("absent")), std::string::npos)
      << key.error().message();
}

TEST_F(TemplateStoreTest, BuildStoresATemplateThatFindReturns) {
  TemplateStore store(root_.Path("data"), FakeBoot(/*firecracker=*/true));
  auto key = TemplateKey(in_);
  ASSERT_TRUE(key.ok());
  EXPECT_FALSE(store.Find(*key));
  auto built = store.Build(in_, {});
  ASSERT_TRUE(built.ok()) << built.error().message();
  EXPECT_EQ(built->key, *key);
  EXPECT_EQ(built->dir, root_.Path("data/templates/" + *key));
  EXPECT_EQ(built->snapshot.memory_path, built->dir + "/snapshot.mem");
  EXPECT_GT(built->disk_bytes, 0u);
  auto found = store.Find(*key);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->snapshot.state_path, built->snapshot.state_path);
  EXPECT_EQ(found->image_digest, "sha256:aa");
  // No build directory is left, and building again reuses the template.
  EXPECT_EQ(root_.Entries("data/templates"), (std::vector<std::string>{*key, *key + ".lock"}));
  ASSERT_TRUE(store.Build(in_, {}).ok());
  EXPECT_EQ(boots_, 1);
}

TEST_F(TemplateStoreTest, AFailedBuildLeavesNothing) {
  TemplateStore store(
      root_.Path("data"),
      [](const TemplateInputs&, const std::string& dir, const BuildOptions&) -> Result<BootResult> {
        Write(dir + "/console.log", "kernel panic");
        return Error::Timeout("the template guest did not answer");
      });
  auto built = store.Build(in_, {});
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.error().message().find("did not answer"), std::string::npos) << built.error().message();
  auto key = TemplateKey(in_);
  EXPECT_EQ(root_.Entries("data/templates"), (std::vector<std::string>{*key + ".lock"}));
}

TEST_F(TemplateStoreTest, ConcurrentBuildsOfOneKeyBootOnce) {
  TemplateStore store(root_.Path("data"), FakeBoot());
  std::vector<std::thread> callers;
  callers.reserve(4);
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; i++) {
    callers.emplace_back([&] {
      if (store.Build(in_, {}).ok()) ok++;
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(boots_, 1);
}

TEST_F(TemplateStoreTest, CollectStaleRemovesTemplatesWhoseImageOrKernelIsGone) {
  TemplateStore store(root_.Path("data"), FakeBoot());
  auto first = store.Build(in_, {});
  ASSERT_TRUE(first.ok());
  TemplateInputs other = in_;
  Write(root_.Path("rootfs2.ext4"), "another image");
  other.rootfs_path = root_.Path("rootfs2.ext4");
  other.image_digest = "sha256:bb";
  auto second = store.Build(other, {});
  ASSERT_TRUE(second.ok());
  // An interrupted build's directory goes too.
  ASSERT_TRUE(fs::MakeDir(store.dir() + "/.build-" + std::string(32, 'c'), 0700).ok());

  auto removed = store.CollectStale();
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_EQ(*removed, 0) << "both templates are current";
  // One with devices: its template.json must give its key back too.
  TemplateInputs with_devices = in_;
  with_devices.nics = 1;
  with_devices.volumes = {{64 << 20, true}, {32 << 20, false}};
  ASSERT_TRUE(store.Build(with_devices, {}).ok());
  removed = store.CollectStale();
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_EQ(*removed, 0) << "a template with devices is current";
  ASSERT_EQ(store.List().size(), 3u);
  EXPECT_FALSE(fs::Exists(store.dir() + "/.build-" + std::string(32, 'c')));

  ASSERT_EQ(::unlink(in_.rootfs_path.c_str()), 0);  // the image GC removed the first image
  removed = store.CollectStale();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2) << "both templates of the first image";
  EXPECT_FALSE(store.Find(first->key));
  EXPECT_TRUE(store.Find(second->key));

  Write(other.kernel_path, "a new kernel");  // an upgrade replaced the guest kernel
  removed = store.CollectStale();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  EXPECT_TRUE(store.List().empty());
}

TEST_F(TemplateStoreTest, RemoveRefusesSomethingThatIsNotAKey) {
  TemplateStore store(root_.Path("data"), FakeBoot());
  Status s = store.Remove("../tasks");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("../tasks"), std::string::npos);
}

TEST_F(TemplateStoreTest, TheQueueBuildsEachKeyOnceInTheBackground) {
  TemplateStore store(root_.Path("data"), FakeBoot());
  auto key = TemplateKey(in_);
  std::vector<std::string> done;
  std::mutex mu;
  {
    BuildQueue queue([&](const std::string& k, const Result<Template>& t) {
      std::lock_guard<std::mutex> lock(mu);
      done.push_back(k + (t.ok() ? " ok" : " failed"));
    });
    EXPECT_TRUE(queue.Add(*key, store, in_, {}));
    EXPECT_FALSE(queue.Add(*key, store, in_, {})) << "already queued";
    queue.WaitIdle();
    EXPECT_EQ(queue.pending(), 0u);
    EXPECT_EQ(queue.finished(), 1u);
    EXPECT_TRUE(queue.Add(*key, store, in_, {})) << "done: may be queued again (it then finds the template)";
    queue.WaitIdle();
  }
  EXPECT_EQ(boots_, 1);
  EXPECT_EQ(done, (std::vector<std::string>{*key + " ok", *key + " ok"}));
}

}  // namespace
}  // namespace nfc::warm
