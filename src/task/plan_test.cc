// The start plan's policy, without a VM: sizing, backend choice, env/user/args precedence, what reaches the
// guest, the shim and the driver state, and the error messages.
#include "task/plan.h"

#include <gtest/gtest.h>

namespace nfc::task {
namespace {

class PlanTest : public ::testing::Test {
 protected:
  PlanTest() {
    task_.id = "alloc-1/web/abcd1234";
    task_.name = "web";
    task_.alloc_id = "alloc-1";
    task_.resources.memory_mb = 256;
    task_.resources.cpu_shares = 500;
    config_.image = "alpine:3.19";
    plugin_.kernel_path = "/guest/vmlinux";
    plugin_.initrd_path = "/guest/initramfs.cpio.gz";
    plugin_.firecracker_path = "firecracker";
    plugin_.qemu_path = "qemu-system-x86_64";
    plugin_.insecure_registries = {"127.0.0.1:5000"};
    host_.machine.cores = 4;
    host_.machine.mhz_per_core = 2000;
    host_.machine.memory_mib = 16384;
    host_.qemu_binary = "/usr/bin/qemu-system-x86_64";
  }

  VmPlan MustPlanVm() {
    auto plan = PlanVm(task_, config_, plugin_, host_);
    EXPECT_TRUE(plan.ok()) << plan.error().message();
    return plan.ok() ? *plan : VmPlan{};
  }

  Provisioned SomeProvisioning() {
    Provisioned p;
    p.image.reference = "docker.io/library/alpine:3.19";
    p.image.manifest_digest = "sha256:1111";
    p.image.rootfs_path = "/cache/sha256-1111.ext4";
    p.image.config.entrypoint = {"/docker-entrypoint.sh"};
    p.image.config.cmd = {"nginx", "-g", "daemon off;"};
    p.image.config.env = {"PATH=/usr/bin"};
    p.image.config.user = "nginx";
    p.dir = shim::TaskDir{"/data/tasks/alloc-1.web.0"};
    p.vm_id = "nfc-0123456789abcdef";
    return p;
  }

  driver::NomadTask task_;
  driver::TaskConfig config_;
  driver::PluginConfig plugin_;
  StartHost host_;
};

TEST_F(PlanTest, SizesFromNomadResourcesUnlessTheTaskConfigSays) {
  VmPlan plan = MustPlanVm();
  EXPECT_EQ(plan.size.vcpus, 1);  // 500 MHz of 2000 MHz cores
  EXPECT_EQ(plan.size.memory_mib, 256);
  config_.vcpu_count = 3;
  config_.mem_size_mib = 1024;
  plan = MustPlanVm();
  EXPECT_EQ(plan.size.vcpus, 3);
  EXPECT_EQ(plan.size.memory_mib, 1024);
  EXPECT_EQ(plan.size.vcpus_from, "task config vcpu_count");
}

TEST_F(PlanTest, SizingErrorsNameTheValue) {
  config_.vcpu_count = 9;
  auto plan = PlanVm(task_, config_, plugin_, host_);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message().find('9'), std::string::npos) << plan.error().message();
}

TEST_F(PlanTest, AutoBackendIsFirecrackerOnlyWhenInstalled) {
  plugin_.backend = driver::Backend::kAuto;
  VmPlan plan = MustPlanVm();
  EXPECT_EQ(plan.backend, vmm::Backend::kQemu);
  EXPECT_EQ(plan.vmm_binary, "/usr/bin/qemu-system-x86_64");
  host_.firecracker_binary = "/usr/local/bin/firecracker";
  plan = MustPlanVm();
  EXPECT_EQ(plan.backend, vmm::Backend::kFirecracker);
  EXPECT_EQ(plan.vmm_binary, "/usr/local/bin/firecracker");
}

TEST_F(PlanTest, TaskBackendWinsAndAMissingBinaryKeepsItsConfiguredName) {
  plugin_.backend = driver::Backend::kQemu;
  config_.backend = driver::Backend::kFirecracker;
  VmPlan plan = MustPlanVm();
  EXPECT_EQ(plan.backend, vmm::Backend::kFirecracker);
  EXPECT_EQ(plan.vmm_binary, "firecracker");  // not installed: the VMM's start names it
}

TEST_F(PlanTest, TaskConfigKernelAndInitrdWinOverThePlugins) {
  VmPlan plan = MustPlanVm();
  EXPECT_EQ(plan.kernel_path, "/guest/vmlinux");
  EXPECT_EQ(plan.base_initrd_path, "/guest/initramfs.cpio.gz");
  config_.kernel = "/mine/vmlinux";
  config_.initrd = "/mine/initrd";
  plan = MustPlanVm();
  EXPECT_EQ(plan.kernel_path, "/mine/vmlinux");
  EXPECT_EQ(plan.base_initrd_path, "/mine/initrd");
}

TEST_F(PlanTest, NomadEnvWinsOverTheTaskConfigsAndLaterEntriesWin) {
  config_.env = {{"A", "config"}, {"B", "first"}, {"B", "second"}};
  task_.env = {{"A", "nomad"}, {"NOMAD_TASK_NAME", "web"}};
  VmPlan plan = MustPlanVm();
  EXPECT_EQ(plan.process.env.at("A"), "nomad");
  EXPECT_EQ(plan.process.env.at("B"), "second");
  EXPECT_EQ(plan.process.env.at("NOMAD_TASK_NAME"), "web");
}

TEST_F(PlanTest, BadEnvNamesAreRefused) {
  config_.env = {{"BAD=NAME", "x"}};
  auto plan = PlanVm(task_, config_, plugin_, host_);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message().find("BAD=NAME"), std::string::npos) << plan.error().message();
}

TEST_F(PlanTest, CommandIsFollowedByArgsAndArgsAloneReplaceTheImageCmd) {
  config_.args = std::vector<std::string>{"-c", "echo hi"};
  VmPlan plan = MustPlanVm();
  EXPECT_EQ(plan.process.args, (std::vector<std::string>{"-c", "echo hi"}));
  EXPECT_FALSE(plan.process.entrypoint.has_value());
  config_.command = "/bin/sh";
  config_.entrypoint = std::vector<std::string>{"/sbin/tini", "--"};
  plan = MustPlanVm();
  EXPECT_EQ(plan.process.args, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(plan.process.entrypoint, (std::vector<std::string>{"/sbin/tini", "--"}));
}

TEST_F(PlanTest, TaskConfigUserWinsOverNomadsTaskUser) {
  task_.user = "nobody";
  EXPECT_EQ(MustPlanVm().process.user, "nobody");
  config_.user = "1000:1000";
  EXPECT_EQ(MustPlanVm().process.user, "1000:1000");
  task_.user.clear();
  config_.user.reset();
  EXPECT_EQ(MustPlanVm().process.user, "");  // the image's USER applies in the guest
}

TEST_F(PlanTest, BootArgsAreSplitLikeAShellAndBadQuotingIsNamed) {
  config_.boot_args = "quiet 'init_on_free=1' loglevel=3";
  EXPECT_EQ(MustPlanVm().kernel_args, (std::vector<std::string>{"quiet", "init_on_free=1", "loglevel=3"}));
  config_.boot_args = "quiet 'unbalanced";
  auto plan = PlanVm(task_, config_, plugin_, host_);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message().rfind("boot_args", 0), 0u) << plan.error().message();
}

TEST_F(PlanTest, PullOptionsCarryAuthForcePullAndTheLeaseHolder) {
  EXPECT_EQ(MustPlanVm().pull.timeout, driver::kDefaultImagePullTimeout);
  config_.auth = driver::RegistryAuth{"me", "secret", ""};
  config_.force_pull = true;
  config_.image_pull_timeout = std::chrono::milliseconds(1500);  // rounded up to whole seconds
  plugin_.pull_activity_timeout = std::chrono::seconds(7);
  VmPlan plan = MustPlanVm();
  EXPECT_EQ(plan.pull.timeout, std::chrono::seconds(2));
  EXPECT_EQ(plan.pull.activity_timeout, std::chrono::seconds(7));
  EXPECT_EQ(plan.image, "alpine:3.19");
  ASSERT_TRUE(plan.pull.auth.has_value());
  EXPECT_EQ(plan.pull.auth->username, "me");
  EXPECT_TRUE(plan.pull.force_pull);
  EXPECT_EQ(plan.pull.lease_holder, task_.id);
  EXPECT_EQ(plan.pull.insecure_registries, plugin_.insecure_registries);
}

TEST_F(PlanTest, HostnameIsTheTaskNameCutTo63UnlessNomadGivesOne) {
  task_.name = std::string(80, 'n');
  EXPECT_EQ(MustPlanVm().hostname, std::string(63, 'n'));
  task_.network = driver::NetworkIsolation{};
  task_.network->hostname = "web-1";
  EXPECT_EQ(MustPlanVm().hostname, "web-1");
}

TEST_F(PlanTest, TaskConfigHostnameWinsOverTheGroupNetworks) {
  task_.network = driver::NetworkIsolation{};
  task_.network->hostname = "web-1";
  config_.hostname = "api.internal";
  EXPECT_EQ(MustPlanVm().hostname, "api.internal");
  auto boot = PlanBoot(MustPlanVm(), task_, config_, SomeProvisioning());
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  EXPECT_EQ(boot->spec.hostname, "api.internal");
}

TEST_F(PlanTest, TaskConfigDnsReplacesWhatItNamesAndNomadsDnsBlockWins) {
  Provisioned p = SomeProvisioning();
  p.network.mode = "group";
  p.host_resolv_conf = "nameserver 10.0.0.2\nsearch corp.example\noptions ndots:1\n";
  // Only the search domains given: the host's servers and options stay.
  config_.dns_search_domains = {"svc.example"};
  auto boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  ASSERT_TRUE(boot->spec.dns.has_value());
  EXPECT_EQ(boot->spec.dns->servers, (std::vector<std::string>{"10.0.0.2"}));
  EXPECT_EQ(boot->spec.dns->searches, (std::vector<std::string>{"svc.example"}));
  EXPECT_EQ(boot->spec.dns->options, (std::vector<std::string>{"ndots:1"}));
  // All three given; and without group networking (no host fallback) they still reach the guest.
  config_.dns_servers = {"10.9.9.9"};
  config_.dns_options = {"edns0"};
  p.network.mode = "";
  boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  ASSERT_TRUE(boot->spec.dns.has_value());
  EXPECT_EQ(boot->spec.dns->servers, (std::vector<std::string>{"10.9.9.9"}));
  EXPECT_EQ(boot->spec.dns->searches, (std::vector<std::string>{"svc.example"}));
  EXPECT_EQ(boot->spec.dns->options, (std::vector<std::string>{"edns0"}));
  // A job's network { dns { ... } } is Nomad's own: it wins, as with the docker driver.
  task_.dns = driver::DnsSettings{{"1.1.1.1"}, {}, {}};
  boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  EXPECT_EQ(boot->spec.dns->servers, (std::vector<std::string>{"1.1.1.1"}));
  EXPECT_TRUE(boot->spec.dns->searches.empty());
}

TEST_F(PlanTest, LabelsReachTheGuestAndTheDriverState) {
  config_.labels = {{"team", "web"}, {"tier", "2"}};
  auto boot = PlanBoot(MustPlanVm(), task_, config_, SomeProvisioning());
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  EXPECT_EQ(boot->spec.labels, config_.labels);
  EXPECT_EQ(boot->state.config.at("labels"), nlohmann::json({{"team", "web"}, {"tier", "2"}}));
  auto round_trip = guest::ParseTaskSpec(guest::TaskSpecToJson(boot->spec));
  ASSERT_TRUE(round_trip.ok()) << round_trip.error().message();
  EXPECT_EQ(round_trip->labels, config_.labels);
}

TEST_F(PlanTest, ReservedCoresPinTheVmmAndMemoryMaxSetsASoftLimit) {
  task_.resources.cpuset_cpus = "1-2";
  task_.resources.memory_mb = 256;
  task_.resources.memory_max_mb = 1024;
  VmPlan plan = MustPlanVm();
  EXPECT_EQ(plan.size.vcpus, 2);
  EXPECT_EQ(plan.size.memory_mib, 1024);
  EXPECT_EQ(plan.cgroup_limits.cpuset_cpus, "1-2");
  EXPECT_EQ(plan.cgroup_limits.memory_bytes, (1024 + sandbox::kVmmMemoryOverheadMib) << 20);
  EXPECT_EQ(plan.cgroup_limits.memory_soft_bytes, (256 + sandbox::kVmmMemoryOverheadMib) << 20);
  // Without memory_max there is nothing to reclaim down to; mem_size wins over memory_max, and then too.
  task_.resources.memory_max_mb = 0;
  EXPECT_EQ(MustPlanVm().cgroup_limits.memory_soft_bytes, 0u);
  task_.resources.memory_max_mb = 1024;
  config_.mem_size_mib = 512;
  EXPECT_EQ(MustPlanVm().cgroup_limits.memory_soft_bytes, 0u);
}

TEST_F(PlanTest, AuthSoftFailReachesThePull) {
  EXPECT_FALSE(MustPlanVm().pull.auth_soft_fail);
  config_.auth_soft_fail = true;
  EXPECT_TRUE(MustPlanVm().pull.auth_soft_fail);
}

TEST_F(PlanTest, GroupNetworkingPlansTheTapAndHostModeNone) {
  EXPECT_EQ(MustPlanVm().planned_tap, "");
  task_.network =
      driver::NetworkIsolation{driver::NetworkIsolation::Mode::kGroup, "/var/run/netns/x", {}, "", ""};
  EXPECT_FALSE(MustPlanVm().planned_tap.empty());
}

TEST_F(PlanTest, NoTaskIdIsAnError) {
  task_.id.clear();
  auto plan = PlanVm(task_, config_, plugin_, host_);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message(), "task has no id");
}

TEST_F(PlanTest, BootPlanTakesTheImagesConfigAndTheTasksOverrides) {
  config_.user = "root";
  VmPlan vm = MustPlanVm();
  auto boot = PlanBoot(vm, task_, config_, SomeProvisioning());
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  const guest::TaskSpec& spec = boot->spec;
  EXPECT_EQ(spec.task_id, "alloc-1/web");
  EXPECT_EQ(spec.image.entrypoint, (std::vector<std::string>{"/docker-entrypoint.sh"}));
  EXPECT_EQ(spec.image.cmd, (std::vector<std::string>{"nginx", "-g", "daemon off;"}));
  EXPECT_EQ(spec.image.user, "nginx");
  EXPECT_EQ(spec.process.user, "root");
  EXPECT_EQ(spec.process.stop_signal, 15);
  EXPECT_EQ(spec.root.device, "/dev/vda");
  EXPECT_EQ(spec.scratch.device, "/dev/vdb");
  EXPECT_FALSE(spec.dns.has_value());  // no network: the image's resolv.conf stays
}

TEST_F(PlanTest, TheImagesStopSignalAppliesWhenItNamesASignal) {
  Provisioned p = SomeProvisioning();
  p.image.config.stop_signal = "SIGQUIT";
  auto boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  EXPECT_EQ(boot->spec.process.stop_signal, 3);
  p.image.config.stop_signal = "SIGNOTONE";  // Docker runs such an image; so do we, with SIGTERM
  boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  EXPECT_EQ(boot->spec.process.stop_signal, 15);
}

TEST_F(PlanTest, GroupAndHostModeDnsComesFromTheHostWithoutLoopbackUnlessTheJobHasDns) {
  for (const char* mode : {"group", "host"}) {
    SCOPED_TRACE(mode);
    task_.dns.reset();
    Provisioned p = SomeProvisioning();
    p.network.mode = mode;
    p.host_resolv_conf = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\n";
    auto boot = PlanBoot(MustPlanVm(), task_, config_, p);
    ASSERT_TRUE(boot.ok()) << boot.error().message();
    ASSERT_TRUE(boot->spec.dns.has_value());
    EXPECT_EQ(boot->spec.dns->servers, (std::vector<std::string>{"10.0.0.2"}));
    EXPECT_EQ(boot->spec.dns->searches, (std::vector<std::string>{"corp.example"}));
    task_.dns = driver::DnsSettings{{"1.1.1.1"}, {}, {}};
    boot = PlanBoot(MustPlanVm(), task_, config_, p);
    ASSERT_TRUE(boot.ok()) << boot.error().message();
    EXPECT_EQ(boot->spec.dns->servers, (std::vector<std::string>{"1.1.1.1"}));
  }
}

TEST_F(PlanTest, HostModeGetsATapOnlyWithHostNetworkOn) {
  EXPECT_TRUE(MustPlanVm().planned_tap.empty());
  plugin_.host_network.enabled = true;
  plugin_.host_network.cidr = "10.230.0.0/24";
  VmPlan vm = MustPlanVm();
  EXPECT_EQ(vm.planned_tap, network::TapNameForTask(task_.id));
  EXPECT_TRUE(vm.network_policy.host_network);
  EXPECT_EQ(vm.network_policy.host_cidr, "10.230.0.0/24");
  EXPECT_EQ(vm.network_policy.data_dir, plugin_.data_dir);
  task_.network = driver::NetworkIsolation{driver::NetworkIsolation::Mode::kNone, "", {}, "", ""};
  EXPECT_TRUE(MustPlanVm().planned_tap.empty());
}

TEST_F(PlanTest, ShimConfigDescribesTheVmInTheTaskDir) {
  task_.stdout_path = "/alloc/logs/.web.stdout.fifo";
  Provisioned p = SomeProvisioning();
  p.network.mode = "group";
  p.network.nic = vmm::NetworkInterface{"eth0", "nfc0abc", "02:00:00:00:00:01", 1500};
  auto boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  const shim::ShimConfig& sc = boot->shim;
  EXPECT_EQ(sc.task_id, task_.id);
  EXPECT_EQ(sc.vm.id, "nfc-0123456789abcdef");
  EXPECT_EQ(sc.vm.kernel_path, "/guest/vmlinux");
  EXPECT_EQ(sc.vm.initrd_path, "/data/tasks/alloc-1.web.0/initramfs.img");
  ASSERT_EQ(sc.vm.drives.size(), 2u);
  EXPECT_EQ(sc.vm.drives[0].path, "/cache/sha256-1111.ext4");
  EXPECT_TRUE(sc.vm.drives[0].read_only);
  EXPECT_EQ(sc.vm.drives[1].path, "/data/tasks/alloc-1.web.0/scratch.img");
  EXPECT_FALSE(sc.vm.drives[1].read_only);
  ASSERT_EQ(sc.vm.nics.size(), 1u);
  EXPECT_EQ(sc.vm.nics[0].tap, "nfc0abc");
  ASSERT_TRUE(sc.vm.guest_channel.has_value());
  EXPECT_EQ(sc.vm.guest_channel->socket_path, "agent.sock");
  EXPECT_EQ(sc.vm.console.path, "/data/tasks/alloc-1.web.0/console.log");
  EXPECT_EQ(sc.stdout_path, "/alloc/logs/.web.stdout.fifo");
  EXPECT_EQ(sc.stderr_path, "/dev/null");
}

TEST_F(PlanTest, DriverStateRecordsWhatRecoveryNeeds) {
  Provisioned p = SomeProvisioning();
  p.network.mode = "group";
  p.network.netns_path = "/var/run/netns/alloc-1";
  p.network.tap = "nfc0abc";
  p.network.address = "172.26.64.5";
  auto boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  const DriverState& st = boot->state;
  EXPECT_EQ(st.task_id, task_.id);
  EXPECT_EQ(st.task_dir, "/data/tasks/alloc-1.web.0");
  EXPECT_EQ(st.control_socket, "/data/tasks/alloc-1.web.0/control.sock");
  EXPECT_EQ(st.exit_record, "/data/tasks/alloc-1.web.0/exit.json");
  EXPECT_EQ(st.backend, "qemu");
  EXPECT_EQ(st.image_digest, "sha256:1111");
  EXPECT_EQ(st.network_mode, "group");
  EXPECT_EQ(st.tap_name, "nfc0abc");
  EXPECT_EQ(st.address, "172.26.64.5");
  EXPECT_EQ(st.config.at("image"), "alpine:3.19");
  EXPECT_EQ(st.config.at("memory_from"), "memory");
}

// The plugin's sandbox applies to QEMU (Firecracker's envelope is its jailer); the uid leased at provisioning
// reaches the VM config (uid = gid, the task's jail) and the driver state.
TEST_F(PlanTest, SandboxedQemuGetsTheLeasedUidAndTheJail) {
  EXPECT_TRUE(MustPlanVm().sandbox);
  Provisioned p = SomeProvisioning();
  p.vm_uid = 200042;
  auto boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  ASSERT_TRUE(boot->shim.vm.sandbox.has_value());
  EXPECT_EQ(boot->shim.vm.sandbox->uid, 200042u);
  EXPECT_EQ(boot->shim.vm.sandbox->gid, 200042u);
  EXPECT_EQ(boot->shim.vm.sandbox->jail_dir, "/data/tasks/alloc-1.web.0/jail");
  EXPECT_EQ(boot->state.vm_uid, 200042u);
  DriverState launched = boot->state;
  launched.shim = {4242, 1};  // what the launch adds
  auto again = DriverState::Decode(launched.Encode());
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->vm_uid, 200042u);
  auto shim_again = shim::ShimConfig::FromJson(boot->shim.ToJson());
  ASSERT_TRUE(shim_again.ok()) << shim_again.error().message();
  ASSERT_TRUE(shim_again->vm.sandbox.has_value());
  EXPECT_EQ(shim_again->vm.sandbox->jail_dir, "/data/tasks/alloc-1.web.0/jail");

  plugin_.sandbox = false;
  EXPECT_FALSE(MustPlanVm().sandbox);
  plugin_.sandbox = true;
  plugin_.backend = driver::Backend::kFirecracker;
  EXPECT_FALSE(MustPlanVm().sandbox) << "no jailer installed: Firecracker runs unconfined";
}

// `jailer` unset: the jailer whenever it is installed; false: never; true: a start without it fails.
TEST_F(PlanTest, FirecrackerRunsThroughTheJailerWhenInstalledUnlessRefused) {
  plugin_.backend = driver::Backend::kFirecracker;
  host_.firecracker_binary = "/usr/local/bin/firecracker";
  EXPECT_EQ(MustPlanVm().jailer_binary, "");
  plugin_.jailer = true;
  plugin_.jailer_path = "/opt/fc/jailer";
  auto missing = PlanVm(task_, config_, plugin_, host_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(missing.error().message().find("jailer_path \"/opt/fc/jailer\" is not installed"),
            std::string::npos)
      << missing.error().message();
  host_.jailer_binary = "/opt/fc/jailer";
  VmPlan vm = MustPlanVm();
  EXPECT_EQ(vm.jailer_binary, "/opt/fc/jailer");
  EXPECT_TRUE(vm.sandbox) << "the uid lease and the cgroup's name come with the jailer";
  plugin_.jailer.reset();
  EXPECT_EQ(MustPlanVm().jailer_binary, "/opt/fc/jailer");
  plugin_.jailer = false;
  EXPECT_EQ(MustPlanVm().jailer_binary, "");
  EXPECT_FALSE(MustPlanVm().sandbox);
  plugin_.jailer.reset();
  plugin_.backend = driver::Backend::kQemu;
  EXPECT_EQ(MustPlanVm().jailer_binary, "") << "QEMU has its own sandbox";
}

TEST_F(PlanTest, JailedFirecrackerGetsItsJailerConfigAndTheStateNamesTheJail) {
  plugin_.backend = driver::Backend::kFirecracker;
  host_.firecracker_binary = "/usr/local/bin/firecracker";
  host_.jailer_binary = "/usr/local/bin/jailer";
  task_.resources.cpu_shares = 500;
  VmPlan vm = MustPlanVm();
  Provisioned p = SomeProvisioning();
  p.vm_uid = 200042;
  p.jail_dir = "/data/jail/firecracker/nfc-0123456789abcdef";
  auto boot = PlanBoot(vm, task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  EXPECT_FALSE(boot->shim.vm.sandbox.has_value());
  ASSERT_TRUE(boot->shim.vm.jailer.has_value());
  const vmm::JailerConfig& j = *boot->shim.vm.jailer;
  EXPECT_EQ(j.binary, "/usr/local/bin/jailer");
  EXPECT_EQ(j.chroot_base, "/data/jail");
  EXPECT_EQ(j.uid, 200042u);
  EXPECT_EQ(j.gid, 200042u);
  EXPECT_EQ(j.parent_cgroup, "nomad-firecracker") << "the jailer's parent is relative to the cgroup root";
  EXPECT_EQ(j.limits.cpu_shares, 500u);
  EXPECT_EQ(j.limits.cpu_quota_us, 0u) << "no cpu_hard_limit, no quota";
  EXPECT_EQ(j.limits.memory_bytes, (uint64_t(vm.size.memory_mib) + sandbox::kVmmMemoryOverheadMib) << 20);
  EXPECT_EQ(vmm::JailerDir(j.chroot_base, boot->shim.vm.vmm_binary, p.vm_id), p.jail_dir);
  EXPECT_EQ(boot->state.jail_dir, p.jail_dir);
  EXPECT_EQ(boot->state.cgroup.name, p.vm_id);
  DriverState launched = boot->state;
  launched.shim = {4242, 1};
  auto again = DriverState::Decode(launched.Encode());
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->jail_dir, p.jail_dir);
  auto shim_again = shim::ShimConfig::FromJson(boot->shim.ToJson());
  ASSERT_TRUE(shim_again.ok()) << shim_again.error().message();
  ASSERT_TRUE(shim_again->vm.jailer.has_value());
  EXPECT_EQ(shim_again->vm.jailer->parent_cgroup, "nomad-firecracker");
  EXPECT_EQ(shim_again->vm.jailer->limits.memory_bytes, j.limits.memory_bytes);
  EXPECT_EQ(shim_again->vm.jailer->uid, 200042u);

  // cpu_hard_limit: Nomad's quota and period reach the cgroup.
  task_.resources.cpu_quota = 50000;
  task_.resources.cpu_period = 100000;
  vm = MustPlanVm();
  EXPECT_EQ(vm.cgroup_limits.cpu_quota_us, 50000u);
  EXPECT_EQ(vm.cgroup_limits.cpu_period_us, 100000u);
  boot = PlanBoot(vm, task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  shim_again = shim::ShimConfig::FromJson(boot->shim.ToJson());
  ASSERT_TRUE(shim_again.ok()) << shim_again.error().message();
  EXPECT_EQ(shim_again->vm.jailer->limits.cpu_quota_us, 50000u);
  EXPECT_EQ(shim_again->vm.jailer->limits.cpu_period_us, 100000u);

  // Reserved cores and memory_max's reservation reach the jailer's cgroup through the shim's config too.
  task_.resources.cpuset_cpus = "1";
  task_.resources.memory_max_mb = 512;
  boot = PlanBoot(MustPlanVm(), task_, config_, p);
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  shim_again = shim::ShimConfig::FromJson(boot->shim.ToJson());
  ASSERT_TRUE(shim_again.ok()) << shim_again.error().message();
  EXPECT_EQ(shim_again->vm.jailer->limits.cpuset_cpus, "1");
  EXPECT_EQ(shim_again->vm.jailer->limits.memory_soft_bytes,
            (uint64_t(task_.resources.memory_mb) + sandbox::kVmmMemoryOverheadMib) << 20);
}

TEST_F(PlanTest, AnInvalidSpecFailsTheBootPlanNamingTheField) {
  config_.work_dir = "relative/dir";
  auto boot = PlanBoot(MustPlanVm(), task_, config_, SomeProvisioning());
  ASSERT_FALSE(boot.ok());
  EXPECT_NE(boot.error().message().find("process.working_dir"), std::string::npos) << boot.error().message();
}

}  // namespace
}  // namespace nfc::task
