// Warm start in the start pipeline, without a VM: which starts are warm, what the shim is given, the template
// builds cold starts queue, and the fallback. A stand-in boots the "template" (it writes its files); real
// restores run in the lifecycle suite with warm start on (tests/lifecycle, lifecycle_test_warm).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "guest/task_spec.h"
#include "shim/shim_config.h"
#include "task/manager.h"
#include "task/manager_test_fakes.h"
#include "temp_dir.h"
#include "volume/volume.h"
#include "warm/template_boot.h"

namespace nfc::task {
namespace {

using testing::FakeImages;
using testing::FakeLauncher;

class ManagerWarmStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"vmlinux", "initramfs.cpio.gz", "rootfs.ext4", "qemu"})
      std::ofstream(root_.Path(name)) << name;
    auto images = std::make_unique<FakeImages>(root_.Path("rootfs.ext4"));
    auto launcher = std::make_unique<FakeLauncher>();
    launcher_ = launcher.get();
    // The shim's part: a shim.json with a warm start restores (or, when told, falls back).
    launcher_->on_launch = [this](const shim::TaskDir& dir, shim::ShimReady& ready) -> Status {
      auto config = shim::ShimConfig::FromJson(*fs::ReadFile(dir.ShimConfig(), 1 << 20));
      EXPECT_TRUE(config.ok());
      if (!config.ok()) return config.error();
      std::lock_guard<std::mutex> lock(mu_);
      shim_configs_.push_back(*config);
      if (!config->warm_start) return Ok();
      if (delivery_fails_) return Error::Internal("hand the restored guest its task: refused");
      if (restore_fails_) {
        ready.mode.cold_fallback = "restoring the warm-start template failed: bad stream";
      } else {
        ready.mode.warm = true;
      }
      return Ok();
    };
    ManagerDeps deps;
    deps.probe_kvm = [](const std::string&, const std::string&) { return false; };  // TCG, no probe
    deps.network.attach = [this](const driver::NomadTask&, const NetworkPolicy&,
                                 const std::string&) -> Result<TaskNetwork> {
      TaskNetwork net;
      if (with_nic_) {
        net.mode = "group";
        net.tap = "tap-test";
        net.nic = vmm::NetworkInterface{"eth0", "tap-test", "aa:bb:cc:00:00:01", 1500};
        net.guest.interfaces.push_back({"eth0", "aa:bb:cc:00:00:01", 1500, {"10.0.0.2/24"}});
      }
      return net;
    };
    deps.network.detach = [](const std::string&, const std::string&, const std::string&) { return Ok(); };
    deps.images = std::move(images);
    deps.launcher = std::move(launcher);
    deps.probe_host = [this](const driver::PluginConfig&) {
      StartHost host;
      host.machine = {4, 2000, 8192};
      host.qemu_binary = root_.Path("qemu");
      return host;
    };
    deps.boot_template = [this](const warm::TemplateInputs& inputs, const std::string& dir,
                                const warm::BuildOptions&) -> Result<warm::BootResult> {
      boots_++;
      {
        std::lock_guard<std::mutex> lock(mu_);
        built_inputs_.push_back(inputs);
      }
      std::ofstream(dir + "/" + std::string(warm::kInitrdName)) << "template initramfs";
      std::ofstream(dir + "/" + std::string(warm::kStateName)) << "snapshot";
      return warm::BootResult{false, 1};
    };
    manager_ = std::make_unique<Manager>(std::move(deps));
    manager_->SetEventSink([this](driver::TaskEvent e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
    });
    config_.data_dir = root_.Path("data");
    config_.kernel_path = root_.Path("vmlinux");
    config_.initrd_path = root_.Path("initramfs.cpio.gz");
    config_.backend = driver::Backend::kQemu;
    config_.sandbox = false;
    config_.gc.image = false;
    config_.warm_start = true;
    ASSERT_TRUE(manager_->Configure(config_).ok());
    ASSERT_TRUE(manager_->Init().ok());
    task_config_.image = "busybox:1.36";
  }

  driver::NomadTask Task(const std::string& name) {
    driver::NomadTask t;
    t.id = "alloc-1/" + name + "/00000001";
    t.name = name;
    t.alloc_id = "alloc-1";
    t.resources.memory_mb = 128;
    return t;
  }

  // The "Booting VM" / "Restoring VM ..." event of a task: its annotations.
  std::map<std::string, std::string> BootEvent(const std::string& task_name) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : events_) {
      if (e.task_name == task_name && (e.message == "Booting VM" || e.message.rfind("Restoring VM", 0) == 0))
        return e.annotations;
    }
    return {};
  }
  bool HasEvent(const std::string& task_name, const std::string& message) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : events_)
      if (e.task_name == task_name && e.message == message) return true;
    return false;
  }

  test_support::TempDir root_{"manager-warm"};
  FakeLauncher* launcher_ = nullptr;
  std::unique_ptr<Manager> manager_;
  driver::PluginConfig config_;
  driver::TaskConfig task_config_;
  std::mutex mu_;
  std::vector<driver::TaskEvent> events_;
  std::vector<shim::ShimConfig> shim_configs_;
  std::atomic<int> boots_{0};
  std::vector<warm::TemplateInputs> built_inputs_;
  bool restore_fails_ = false;
  bool delivery_fails_ = false;
  bool with_nic_ = false;
};

TEST_F(ManagerWarmStartTest, TheFirstStartBootsColdAndBuildsTheTemplateTheSecondRestoresIt) {
  auto first = manager_->StartTask(Task("one"), task_config_);
  ASSERT_TRUE(first.ok()) << first.error().message();
  auto cold = BootEvent("one");
  EXPECT_EQ(cold["start"], "cold");
  EXPECT_EQ(cold["cold_reason"], "no warm-start template for this image and VM size yet");
  manager_->WaitForTemplateBuilds();
  EXPECT_EQ(boots_, 1);

  auto second = manager_->StartTask(Task("two"), task_config_);
  ASSERT_TRUE(second.ok()) << second.error().message();
  auto warm = BootEvent("two");
  EXPECT_EQ(warm["start"], "warm");
  ASSERT_EQ(warm["template"].size(), 32u);
  ASSERT_EQ(shim_configs_.size(), 2u);
  EXPECT_FALSE(shim_configs_[0].warm_start);
  const shim::ShimConfig& sc = shim_configs_[1];
  ASSERT_TRUE(sc.warm_start);
  // The template's files are linked into the task dir (the template may go while the VM runs), the cold
  // boot stays the fallback, and the task travels as the guest's spec.
  std::string dir = shim::TaskDirFor(config_.data_dir, "alloc-1/two/00000001").root;
  EXPECT_EQ(sc.warm_start->snapshot.state_path, dir + "/template.state");
  EXPECT_EQ(sc.warm_start->initrd_path, dir + "/template.initramfs");
  struct stat linked, original;
  ASSERT_EQ(::stat(sc.warm_start->snapshot.state_path.c_str(), &linked), 0);
  ASSERT_EQ(
      ::stat((config_.data_dir + "/templates/" + warm["template"] + "/snapshot.state").c_str(), &original),
      0);
  EXPECT_EQ(linked.st_ino, original.st_ino);
  EXPECT_EQ(sc.vm.initrd_path, dir + "/initramfs.img");
  EXPECT_NE(sc.warm_start->spec_json.find("alloc-1/two"), std::string::npos) << sc.warm_start->spec_json;
  auto timings = manager_->Timings("alloc-1/two/00000001");
  ASSERT_TRUE(timings);
  EXPECT_TRUE(timings->warm);
  manager_->WaitForTemplateBuilds();
  EXPECT_EQ(boots_, 1) << "a warm start builds nothing";
}

TEST_F(ManagerWarmStartTest, ConcurrentColdStartsOfOneKeyBuildTheTemplateOnce) {
  std::vector<std::thread> starts;
  starts.reserve(3);
  for (const char* name : {"a", "b", "c"}) {
    starts.emplace_back([this, name] { EXPECT_TRUE(manager_->StartTask(Task(name), task_config_).ok()); });
  }
  for (auto& s : starts) s.join();
  manager_->WaitForTemplateBuilds();
  EXPECT_EQ(boots_, 1);
}

TEST_F(ManagerWarmStartTest, TheTaskConfigsWarmStartWinsOverThePlugins) {
  task_config_.warm_start = false;
  ASSERT_TRUE(manager_->StartTask(Task("off"), task_config_).ok());
  EXPECT_EQ(BootEvent("off")["cold_reason"], "warm_start is off");
  task_config_.warm_start.reset();
  task_config_.mem_size_mib = 256;  // another size: another key, whose template a start would build
  config_.warm_start = false;
  ASSERT_TRUE(manager_->Configure(config_).ok());
  task_config_.warm_start = true;  // the task's override wins over the plugin's
  ASSERT_TRUE(manager_->StartTask(Task("on"), task_config_).ok());
  EXPECT_EQ(BootEvent("on")["start"], "cold");
  manager_->WaitForTemplateBuilds();
  EXPECT_EQ(boots_, 1) << "only the task that wanted warm start queued a build";
}

TEST_F(ManagerWarmStartTest, ATaskWithANetworkInterfaceHasATemplateOfItsOwnAndTakesItsMacBack) {
  ASSERT_TRUE(manager_->StartTask(Task("plain"), task_config_).ok());
  manager_->WaitForTemplateBuilds();
  with_nic_ = true;
  ASSERT_TRUE(manager_->StartTask(Task("net1"), task_config_).ok());
  EXPECT_EQ(BootEvent("net1")["start"], "cold") << "the template without a NIC is not this task's";
  manager_->WaitForTemplateBuilds();
  EXPECT_EQ(boots_, 2);
  ASSERT_EQ(built_inputs_.size(), 2u);
  EXPECT_EQ(built_inputs_[0].nics, 0u);
  EXPECT_EQ(built_inputs_[1].nics, 1u);

  ASSERT_TRUE(manager_->StartTask(Task("net2"), task_config_).ok());
  EXPECT_EQ(BootEvent("net2")["start"], "warm");
  const shim::ShimConfig& sc = shim_configs_.back();
  ASSERT_TRUE(sc.warm_start);
  // The shim restores the NIC with the template's MAC on the task's TAP; the guest takes the task's MAC.
  ASSERT_EQ(sc.vm.nics.size(), 1u);
  EXPECT_EQ(sc.vm.nics[0].tap, "tap-test");
  EXPECT_EQ(sc.warm_start->nic_macs, std::vector<std::string>{warm::TemplateMac(0)});
  auto spec = guest::ParseTaskSpec(sc.warm_start->spec_json);
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  ASSERT_EQ(spec->network.interfaces.size(), 1u);
  EXPECT_EQ(spec->network.interfaces[0].mac, "aa:bb:cc:00:00:01");
  EXPECT_EQ(spec->network.interfaces[0].current_mac, warm::TemplateMac(0));
}

TEST_F(ManagerWarmStartTest, VolumesAreInTheKeyBySizeAndAccess) {
  // Directory volumes: each holds a disk image of the task's volume_size (made on first use).
  auto volume_task = [this](const std::string& name, const std::string& dir, bool read_only) {
    std::filesystem::create_directories(root_.Path(dir));
    driver::NomadTask task = Task(name);
    task.mounts.push_back({"/data", root_.Path(dir), read_only});
    return task;
  };
  task_config_.volume_size_bytes = 32 << 20;
  ASSERT_TRUE(manager_->StartTask(volume_task("vol1", "v1", false), task_config_).ok());
  EXPECT_EQ(BootEvent("vol1")["start"], "cold");
  manager_->WaitForTemplateBuilds();
  ASSERT_EQ(built_inputs_.size(), 1u);
  ASSERT_EQ(built_inputs_[0].volumes.size(), 1u);
  EXPECT_EQ(built_inputs_[0].volumes[0].bytes, uint64_t{32} << 20);
  EXPECT_FALSE(built_inputs_[0].volumes[0].read_only);

  ASSERT_TRUE(manager_->StartTask(volume_task("vol2", "v2", false), task_config_).ok());
  EXPECT_EQ(BootEvent("vol2")["start"], "warm") << "another volume of the same size and access";
  ASSERT_EQ(shim_configs_.back().vm.drives.size(), 3u);
  EXPECT_EQ(shim_configs_.back().vm.drives[2].path, root_.Path("v2") + "/" + volume::kImageName)
      << "the task's own volume behind the template's disk";

  ASSERT_TRUE(manager_->StartTask(volume_task("vol3", "v3", true), task_config_).ok());
  EXPECT_EQ(BootEvent("vol3")["start"], "cold") << "read-only is another key";
  task_config_.volume_size_bytes = 64 << 20;
  ASSERT_TRUE(manager_->StartTask(volume_task("vol4", "v4", false), task_config_).ok());
  EXPECT_EQ(BootEvent("vol4")["start"], "cold") << "another size is another key";
  manager_->WaitForTemplateBuilds();
  EXPECT_EQ(boots_, 3);
}

TEST_F(ManagerWarmStartTest, ATemplateThatDoesNotLoadIsReportedRemovedAndBuiltAgain) {
  ASSERT_TRUE(manager_->StartTask(Task("one"), task_config_).ok());
  manager_->WaitForTemplateBuilds();
  restore_fails_ = true;
  auto started = manager_->StartTask(Task("two"), task_config_);
  ASSERT_TRUE(started.ok()) << "a failed restore falls back to a cold boot: " << started.error().message();
  EXPECT_TRUE(HasEvent("two", "Warm start failed; booted cold"));
  auto timings = manager_->Timings("alloc-1/two/00000001");
  ASSERT_TRUE(timings);
  EXPECT_FALSE(timings->warm);
  manager_->WaitForTemplateBuilds();
  EXPECT_EQ(boots_, 2) << "the template was removed and built again";
}

TEST_F(ManagerWarmStartTest, ARestoredVmThatDoesNotRunItsTaskIsRolledBackAndTheTaskBootsCold) {
  ASSERT_TRUE(manager_->StartTask(Task("one"), task_config_).ok());
  manager_->WaitForTemplateBuilds();
  ASSERT_EQ(boots_, 1);
  delivery_fails_ = true;
  auto started = manager_->StartTask(Task("two"), task_config_);
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_TRUE(HasEvent("two", "Warm start failed; booted cold"));
  ASSERT_EQ(launcher_->launches, 3) << "the cold start, the warm attempt, its cold retry";
  EXPECT_TRUE(shim_configs_[1].warm_start);
  EXPECT_FALSE(shim_configs_[2].warm_start);
  auto timings = manager_->Timings("alloc-1/two/00000001");
  ASSERT_TRUE(timings);
  EXPECT_FALSE(timings->warm);
  manager_->WaitForTemplateBuilds();
  EXPECT_EQ(boots_, 2) << "the template that failed was removed and built again";
  EXPECT_EQ(warm::TemplateStore(config_.data_dir).List().size(), 1u);
}

TEST_F(ManagerWarmStartTest, ATemplateBuiltAheadOfTimeIsTheOneTheFirstStartRestores) {
  auto built = manager_->BuildTemplate(Task("ahead"), task_config_);
  ASSERT_TRUE(built.ok()) << built.error().message();
  EXPECT_EQ(boots_, 1);
  EXPECT_EQ(launcher_->launches, 0) << "no task was started";
  EXPECT_FALSE(fs::Exists(shim::TaskDirFor(config_.data_dir, "alloc-1/ahead/00000001").root))
      << "the provisioning is rolled back";
  ASSERT_TRUE(manager_->StartTask(Task("first"), task_config_).ok());
  EXPECT_EQ(BootEvent("first")["start"], "warm");
  EXPECT_EQ(BootEvent("first")["template"], built->key);
  auto again = manager_->BuildTemplate(Task("ahead"), task_config_);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->key, built->key);
  EXPECT_EQ(boots_, 1) << "an existing template is not built again";
}

}  // namespace
}  // namespace nfc::task
