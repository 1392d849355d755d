// The start pipeline of task::Manager with stand-ins for the image store and the shim, and a file system that
// fails on request: what a start creates, that a failure at any step leaves nothing behind, and that error
// codes survive (a transient boot failure stays transient).
#include "task/manager.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "base/fault_env.h"
#include "base/fs.h"
#include "shim/shim_config.h"
#include "task/driver_state.h"
#include "task/manager_test_fakes.h"
#include "temp_dir.h"

namespace nfc::task {
namespace {

using Op = FaultInjectingEnv::Op;
using testing::FakeImages;
using testing::FakeLauncher;

class ManagerStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(root_.Path("vmlinux"), "kernel");
    WriteFile(root_.Path("initramfs.cpio.gz"), "base initramfs");
    WriteFile(root_.Path("rootfs.ext4"), "rootfs");
    auto images = std::make_unique<FakeImages>(root_.Path("rootfs.ext4"));
    auto launcher = std::make_unique<FakeLauncher>();
    images_ = images.get();
    launcher_ = launcher.get();
    ManagerDeps deps;
    deps.probe_kvm = [](const std::string&, const std::string&) { return false; };  // TCG, no probe
    deps.env = &env_;
    deps.images = std::move(images);
    deps.launcher = std::move(launcher);
    deps.probe_host = [](const driver::PluginConfig&) {
      StartHost host;
      host.machine = {4, 2000, 8192};
      host.qemu_binary = "/bin/true";
      return host;
    };
    deps.new_vm_id = [] { return std::string("nfc-00000000000000aa"); };
    // The VMM's cgroup is the host's in production; here the calls are only recorded.
    deps.cgroups.create = [this](const std::string& parent, const std::string& name,
                                 const sandbox::CgroupLimits&) -> Result<std::vector<std::string>> {
      cgroups_.insert(parent + "/" + name);
      return std::vector<std::string>{root_.Path(name + ".procs")};
    };
    deps.cgroups.remove = [this](const std::string& parent, const std::string& name) {
      cgroups_.erase(parent + "/" + name);
      return Ok();
    };
    manager_ = std::make_unique<Manager>(std::move(deps));
    driver::PluginConfig config;
    config.data_dir = root_.Path("data");
    config.kernel_path = root_.Path("vmlinux");
    config.initrd_path = root_.Path("initramfs.cpio.gz");
    config.backend = driver::Backend::kQemu;
    ASSERT_TRUE(manager_->Configure(config).ok());
    ASSERT_TRUE(manager_->Init().ok());
    task_.id = "alloc-1/web/00000001";
    task_.name = "web";
    task_.alloc_id = "alloc-1";
    task_.resources.memory_mb = 128;
    task_config_.image = "busybox:1.36";
  }
  static void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  std::string TaskDir() const { return shim::TaskDirFor(root_.Path("data"), task_.id).root; }

  // Nothing of the start is left: no task dir, no lease, no shim, and the task is unknown.
  void ExpectNothingLeft() {
    EXPECT_FALSE(fs::Exists(TaskDir())) << TaskDir();
    EXPECT_TRUE(images_->leases.empty());
    EXPECT_EQ(launcher_->stops, launcher_->launches);
    EXPECT_TRUE(cgroups_.empty()) << *cgroups_.begin();
    EXPECT_TRUE(root_.Entries("data/vm-uids").empty() ||
                root_.Entries("data/vm-uids") == std::vector<std::string>{".lock"})
        << "a uid lease is left";
    auto inspected = manager_->InspectTask(task_.id);
    ASSERT_FALSE(inspected.ok());
    EXPECT_EQ(inspected.error().code(), ErrorCode::kNotFound);
  }

  test_support::TempDir root_{"manager-test"};  // first: removed after the manager below is gone
  FaultInjectingEnv env_;
  FakeImages* images_ = nullptr;
  FakeLauncher* launcher_ = nullptr;
  std::set<std::string> cgroups_;  // made and not removed
  std::unique_ptr<Manager> manager_;
  driver::NomadTask task_;
  driver::TaskConfig task_config_;
};

TEST_F(ManagerStartTest, AStartWritesEveryBootFileLaunchesOnceAndRecordsTheTask) {
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_EQ(launcher_->launches, 1);
  EXPECT_EQ(launcher_->stops, 0);
  EXPECT_TRUE(launcher_->seen_shim_config);
  EXPECT_TRUE(launcher_->seen_initramfs);
  EXPECT_TRUE(launcher_->seen_scratch);
  EXPECT_EQ(images_->leases, std::set<std::string>{task_.id});
  shim::TaskDir dir{TaskDir()};
  EXPECT_TRUE(fs::Exists(dir.StartRecord()));
  auto on_disk = fs::ReadFile(dir.DriverState(), 1 << 20);
  ASSERT_TRUE(on_disk.ok()) << on_disk.error().message();
  EXPECT_EQ(*on_disk, started->handle.driver_state);
  auto state = DriverState::Decode(started->handle.driver_state);
  ASSERT_TRUE(state.ok()) << state.error().message();
  EXPECT_TRUE(state->shim.IsAlive());
  EXPECT_EQ(state->started_at_unix_nanos, 1700000000000000000);
  EXPECT_EQ(state->image_digest, "sha256:feed");
  EXPECT_EQ(started->handle.config.id, task_.id);
  // Sandboxed by default: a uid lease owned by the task dir, and the VMM's cgroup.
  EXPECT_EQ(state->vm_uid, 200000u);
  EXPECT_EQ(*fs::ReadFile(root_.Path("data/vm-uids/200000"), 4096), TaskDir());
  EXPECT_EQ(cgroups_, std::set<std::string>{"/nomad-firecracker/nfc-00000000000000aa"});
  EXPECT_EQ(state->cgroup.name, "nfc-00000000000000aa");
  EXPECT_TRUE(fs::Exists(dir.Jail()));
  auto again = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
}

TEST_F(ManagerStartTest, TheTaskConfigsLabelsAreDriverAttributes) {
  task_config_.labels = {{"team", "web"}, {"tier", "2"}};
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_TRUE(started.ok()) << started.error().message();
  auto inspected = manager_->InspectTask(task_.id);
  ASSERT_TRUE(inspected.ok()) << inspected.error().message();
  EXPECT_EQ(inspected->driver_attributes["label.team"], "web");
  EXPECT_EQ(inspected->driver_attributes["label.tier"], "2");
}

// The plugin's image GC runs in the runtime instance (Init) with the configured delay, about every quarter
// of it (at least once a second), and stops with the manager; `gc { image = false }` runs none.
TEST(ManagerImageGcTest, RoundsFollowTheConfigAndStopWithTheManager) {
  test_support::TempDir root("manager-gc");
  for (bool enabled : {true, false}) {
    auto images = std::make_unique<FakeImages>(root.Path("rootfs.ext4"));
    FakeImages* seen = images.get();
    ManagerDeps deps;
    deps.probe_kvm = [](const std::string&, const std::string&) { return false; };  // TCG, no probe
    deps.images = std::move(images);
    auto manager = std::make_unique<Manager>(std::move(deps));
    driver::PluginConfig config;
    config.data_dir = root.Path(enabled ? "on" : "off");
    config.gc.image = enabled;
    config.gc.image_delay = std::chrono::milliseconds(0);
    ASSERT_TRUE(manager->Configure(config).ok());
    ASSERT_TRUE(manager->Init().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2300));
    auto before_stop = std::chrono::steady_clock::now();
    std::vector<std::chrono::milliseconds> delays;
    {
      std::lock_guard<std::mutex> lock(seen->gc_mu);
      delays = seen->gc_delays;
    }
    manager.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - before_stop, std::chrono::milliseconds(900))
        << "the GC thread must not hold the manager's destruction for a whole period";
    if (enabled) {
      EXPECT_GE(delays.size(), 2u);
      EXPECT_LE(delays.size(), 3u);
      for (auto d : delays) EXPECT_EQ(d, std::chrono::milliseconds(0));
    } else {
      EXPECT_TRUE(delays.empty());
    }
  }
}

TEST_F(ManagerStartTest, AFailedDriverStateWriteFailsTheStartAndLeavesNothing) {
  env_.FailOn(Op::kWriteFileDurably, "/driver_state.json", ENOSPC);
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(started.error().message().find("driver state"), std::string::npos) << started.error().message();
  EXPECT_EQ(env_.Failures(Op::kWriteFileDurably), 1);
  EXPECT_EQ(launcher_->launches, 1);
  ExpectNothingLeft();
  // The next plugin instance has nothing to remove or recover either.
  EXPECT_TRUE(manager_->Init().ok());
  EXPECT_FALSE(fs::Exists(TaskDir()));
}

// A full data dir at each state file the start writes before the shim exists: the error names the file, keeps
// ENOSPC's transient code (Nomad may retry once space is freed), and the start is undone.
TEST_F(ManagerStartTest, AFullDataDirAtEachEarlyStateFileFailsTheStartRecoverably) {
  for (auto [file, named] :
       {std::pair<std::string, std::string>{"/start.json", "start record"}, {"/shim.json", "shim config"}}) {
    SCOPED_TRACE(file);
    env_.ClearFaults();
    env_.FailOn(Op::kWriteFileDurably, file, ENOSPC, 1);
    auto started = manager_->StartTask(task_, task_config_);
    ASSERT_FALSE(started.ok());
    std::printf("caller sees: %s\n", started.error().message().c_str());
    EXPECT_EQ(started.error().code(), ErrorCode::kResourceExhausted) << started.error().message();
    EXPECT_TRUE(IsTransient(started.error().code()));
    EXPECT_NE(started.error().message().find(named), std::string::npos) << started.error().message();
    EXPECT_NE(started.error().message().find("No space left on device"), std::string::npos)
        << started.error().message();
    EXPECT_EQ(launcher_->launches, 0);
    ExpectNothingLeft();
  }
  // Space freed: the same task starts.
  env_.ClearFaults();
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_TRUE(started.ok()) << started.error().message();
}

TEST_F(ManagerStartTest, AFailedStartRecordWriteUndoesTheLeaseAndTheTaskDir) {
  env_.FailOn(Op::kWriteFileDurably, "/start.json");
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message().find("start record"), std::string::npos) << started.error().message();
  EXPECT_EQ(launcher_->launches, 0);
  ExpectNothingLeft();
}

TEST_F(ManagerStartTest, ATransientBootFailureKeepsItsCodeAndIsRolledBack) {
  launcher_->fail = Error::Timeout("the guest agent did not answer within 180 s of the VM starting");
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code(), ErrorCode::kTimeout);
  EXPECT_EQ(launcher_->stops, 1);  // a shim that failed after starting may still be there: stopped
  EXPECT_FALSE(fs::Exists(TaskDir()));
  EXPECT_TRUE(images_->leases.empty());
}

TEST_F(ManagerStartTest, AnImageFailureCreatesNothing) {
  images_->fail = Error::NotFound("manifest unknown: busybox:1.36");
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(started.error().message().rfind("image busybox:1.36", 0), 0u) << started.error().message();
  EXPECT_EQ(env_.Calls(Op::kWriteFileDurably), 0);
  ExpectNothingLeft();
}

TEST_F(ManagerStartTest, ABadJobFailsBeforeAnyDownload) {
  task_config_.vcpu_count = 64;
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(images_->resolves, 0);
  ExpectNothingLeft();
}

TEST_F(ManagerStartTest, AMissingGuestKernelIsNamedBeforeAnyDownload) {
  task_config_.kernel = root_.Path("no-such-vmlinux");
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message().find("guest kernel"), std::string::npos) << started.error().message();
  EXPECT_NE(started.error().message().find("no-such-vmlinux"), std::string::npos)
      << started.error().message();
  EXPECT_EQ(images_->resolves, 0);
}

// A directory volume: its image is made, given to the VM as the third disk with an exclusive lock for the
// VMM.
TEST_F(ManagerStartTest, AVolumeIsADiskOfTheVmLockedForItsWriter) {
  std::string volume = root_.Path("vol");
  ASSERT_TRUE(fs::MakeDir(volume, 0755).ok());
  task_.mounts = {{"/data", volume, false, "", "", "data"}};
  task_config_.volume_size_bytes = 32 << 20;
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_TRUE(started.ok()) << started.error().message();
  auto text = fs::ReadFile(shim::TaskDir{TaskDir()}.ShimConfig(), 1 << 20);
  ASSERT_TRUE(text.ok());
  auto config = shim::ShimConfig::FromJson(*text);
  ASSERT_TRUE(config.ok()) << config.error().message();
  ASSERT_EQ(config->vm.drives.size(), 3u);
  EXPECT_EQ(config->vm.drives[2].path, volume + "/" + volume::kImageName);
  EXPECT_FALSE(config->vm.drives[2].read_only);
  EXPECT_EQ(config->vm.drives[2].lock, vmm::DriveLock::kExclusive);
  EXPECT_TRUE(fs::Exists(volume + "/" + volume::kImageName));
}

TEST_F(ManagerStartTest, AVolumeInUseFailsTheStartRecoverablyBeforeTheDownload) {
  std::string volume = root_.Path("vol");
  ASSERT_TRUE(fs::MakeDir(volume, 0755).ok());
  auto made = volume::Prepare({volume::Request::Kind::kMount, "mounts[0]", volume, "/data", true}, 32 << 20);
  ASSERT_TRUE(made.ok()) << made.error().message();
  auto reader = fs::TryLockFile(made->path, fs::LockMode::kShared);  // another task's VM reads it
  ASSERT_TRUE(reader.ok());
  task_.mounts = {{"/data", volume, false, "", "", "data"}};
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(started.error().message().find("mounts[0] (/data)"), std::string::npos)
      << started.error().message();
  EXPECT_EQ(launcher_->launches, 0);
  EXPECT_EQ(images_->resolves, 0);
  ExpectNothingLeft();
  EXPECT_TRUE(fs::Exists(made->path)) << "the volume's data is never removed";
}

TEST_F(ManagerStartTest, AWrittenVolumeMountedTwiceIsRefused) {
  std::string volume = root_.Path("vol");
  ASSERT_TRUE(fs::MakeDir(volume, 0755).ok());
  task_.mounts = {{"/a", volume, true, "", "", "data"}, {"/b", volume, false, "", "", "data"}};
  auto started = manager_->StartTask(task_, task_config_);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(started.error().message().find("mounts[1]: " + volume + "/" + volume::kImageName +
                                           " is also mounts[0]"),
            std::string::npos)
      << started.error().message();
  ExpectNothingLeft();
  task_.mounts[1].readonly = true;  // two readers of one disk are fine
  EXPECT_TRUE(manager_->StartTask(task_, task_config_).ok());
}

}  // namespace
}  // namespace nfc::task
