#include "driver/plugin_config.h"

#include <gtest/gtest.h>

namespace nfc::driver {
namespace {

CtyValue Obj(CtyValue::Map entries) {
  return CtyValue::MakeMap(std::move(entries));
}
CtyValue Str(std::string s) {
  return CtyValue::String(std::move(s));
}

std::string ErrorOf(const CtyValue& v) {
  Result<PluginConfig> r = DecodePluginConfig(v);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message();
}

TEST(PluginConfigTest, EmptyBlockAndNoBlockGiveDefaults) {
  PluginConfig defaults;
  EXPECT_EQ(*DecodePluginConfigMsgpack(""), defaults);
  EXPECT_EQ(*DecodePluginConfig(CtyValue()), defaults);
  EXPECT_EQ(*DecodePluginConfig(Obj({})), defaults);
  EXPECT_EQ(defaults.kernel_path, "/usr/lib/nomad-firecracker/guest/vmlinux");
  EXPECT_EQ(defaults.initrd_path, "/usr/lib/nomad-firecracker/guest/initramfs.cpio.gz");
  EXPECT_EQ(defaults.data_dir, "/var/lib/nomad-firecracker");
  EXPECT_EQ(defaults.image_cache_bytes, 20ULL << 30);
  EXPECT_EQ(defaults.pull_activity_timeout, std::chrono::seconds(120));
}

TEST(PluginConfigTest, SeedConfigVerbatim) {
  // plugin "litegix-fc-driver" { config { vmlinux_path = "/path/to/vmlinux"  rootfs_base_path =
  // "/tmp/litegix-rootfs" } } as the client sends it: every schema key present, unset ones null, defaults
  // filled in.
  Result<PluginConfig> r = DecodePluginConfig(Obj({
      {"backend", Str("auto")},
      {"ca_file", CtyValue()},
      {"containerd_socket", CtyValue()},
      {"data_dir", CtyValue()},
      {"firecracker_path", Str("firecracker")},
      {"image_cache_size", Str("20GiB")},
      {"initrd_path", Str("/usr/lib/nomad-firecracker/guest/initramfs.cpio.gz")},
      {"insecure_registries", CtyValue::MakeList({})},
      {"jailer_path", Str("jailer")},
      {"kernel_path", CtyValue()},
      {"qemu_path", Str("qemu-system-x86_64")},
      {"rootfs_base_path", Str("/tmp/litegix-rootfs")},
      {"vmlinux_path", Str("/path/to/vmlinux")},
  }));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->kernel_path, "/path/to/vmlinux");
  EXPECT_EQ(r->data_dir, "/tmp/litegix-rootfs");
  EXPECT_TRUE(r->warnings.empty());
}

TEST(PluginConfigTest, ContainerdSocketIsIgnoredWithAWarning) {
  Result<PluginConfig> r =
      DecodePluginConfig(Obj({{"containerd_socket", Str("/run/containerd/containerd.sock")}}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("containerd_socket"), std::string::npos);
  EXPECT_NE(r->warnings[0].find("ignored"), std::string::npos);
}

TEST(PluginConfigTest, BadValuesNameTheOptionAndValue) {
  std::string e = ErrorOf(Obj({{"backend", Str("kvmtool")}}));
  EXPECT_NE(e.find("\"backend\""), std::string::npos) << e;
  EXPECT_NE(e.find("kvmtool"), std::string::npos) << e;
  e = ErrorOf(Obj({{"image_cache_size", Str("20 parsecs")}}));
  EXPECT_NE(e.find("image_cache_size"), std::string::npos) << e;
  EXPECT_NE(e.find("20 parsecs"), std::string::npos) << e;
  e = ErrorOf(Obj({{"kernel_path", Str("relative/vmlinux")}}));
  EXPECT_NE(e.find("kernel_path"), std::string::npos) << e;
  e = ErrorOf(Obj({{"kernel_path", Str("/a")}, {"vmlinux_path", Str("/b")}}));
  EXPECT_NE(e.find("vmlinux_path"), std::string::npos) << e;
  e = ErrorOf(Obj({{"data_dir", CtyValue::Int(3)}}));
  EXPECT_NE(e.find("data_dir"), std::string::npos) << e;
  e = ErrorOf(Obj({{"insecure_registries", CtyValue::MakeList({Str("http://x/y")})}}));
  EXPECT_NE(e.find("insecure_registries"), std::string::npos) << e;
  e = ErrorOf(Obj({{"colour", Str("blue")}}));
  EXPECT_NE(e.find("unknown option \"colour\""), std::string::npos) << e;
  e = ErrorOf(Str("not an object"));
  EXPECT_NE(e.find("must be an object"), std::string::npos) << e;
}

TEST(PluginConfigTest, SameAliasValueTwiceIsFine) {
  Result<PluginConfig> r = DecodePluginConfig(Obj({{"kernel_path", Str("/k")}, {"vmlinux_path", Str("/k")}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kernel_path, "/k");
}

TEST(PluginConfigTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("20GiB"), 20ULL << 30);
  EXPECT_EQ(*ParseByteSize("512MiB"), 512ULL << 20);
  EXPECT_EQ(*ParseByteSize("10GB"), 10000000000ULL);
  EXPECT_EQ(*ParseByteSize("1.5TiB"), 1649267441664ULL);
  EXPECT_EQ(*ParseByteSize("1073741824"), 1073741824ULL);
  EXPECT_EQ(*ParseByteSize("0"), 0ULL);
  EXPECT_EQ(*ParseByteSize("4 g"), 4ULL << 30);
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("GiB").ok());
  EXPECT_FALSE(ParseByteSize("1.2.3GB").ok());
  EXPECT_FALSE(ParseByteSize("-5GB").ok());
  EXPECT_FALSE(ParseByteSize("99999999999TiB").ok());
}

TEST(PluginConfigTest, PullActivityTimeoutIsADuration) {
  Result<PluginConfig> r = DecodePluginConfig(Obj({{"pull_activity_timeout", Str("45s")}}));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->pull_activity_timeout, std::chrono::seconds(45));
  std::string e = ErrorOf(Obj({{"pull_activity_timeout", Str("45")}}));
  EXPECT_NE(e.find("\"pull_activity_timeout\""), std::string::npos) << e;
  EXPECT_NE(e.find("needs a unit"), std::string::npos) << e;
  e = ErrorOf(Obj({{"pull_activity_timeout", Str("200ms")}}));
  EXPECT_NE(e.find("from 1s to 1h"), std::string::npos) << e;
}

TEST(PluginConfigTest, BootTimeoutIsADurationWithADefault) {
  Result<PluginConfig> r = DecodePluginConfig(Obj({{"boot_timeout", Str("90s")}}));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->boot_timeout, std::chrono::seconds(90));
  EXPECT_EQ(PluginConfig{}.boot_timeout, std::chrono::minutes(3));
  std::string e = ErrorOf(Obj({{"boot_timeout", Str("2h")}}));
  EXPECT_NE(e.find("\"boot_timeout\" = \"2h\""), std::string::npos) << e;
  EXPECT_NE(e.find("from 1s to 1h"), std::string::npos) << e;
}

TEST(PluginConfigTest, SandboxIsOnByDefaultWithAUidRange) {
  PluginConfig d;
  EXPECT_TRUE(d.sandbox);
  EXPECT_EQ(d.vm_uids.ToString(), "200000-265535");
  Result<PluginConfig> r =
      DecodePluginConfig(Obj({{"sandbox", CtyValue::Bool(false)}, {"vm_uids", Str("500000-500009")}}));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(r->sandbox);
  EXPECT_EQ(r->vm_uids.first, 500000u);
  EXPECT_EQ(r->vm_uids.last, 500009u);
  std::string e = ErrorOf(Obj({{"vm_uids", Str("0-10")}}));
  EXPECT_NE(e.find("\"vm_uids\" = \"0-10\""), std::string::npos) << e;
  EXPECT_NE(e.find("0 is root"), std::string::npos) << e;
}

TEST(PluginConfigTest, JailerIsUnsetUnlessTheOperatorSaysSo) {
  auto d = DecodePluginConfig(Obj({}));
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_FALSE(d->jailer.has_value()) << "unset: the jailer whenever it is installed";
  for (bool on : {true, false}) {
    auto r = DecodePluginConfig(Obj({{"jailer", CtyValue::Bool(on)}}));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->jailer, std::optional<bool>(on));
  }
  std::string e = ErrorOf(Obj({{"jailer", Str("sometimes")}}));
  EXPECT_NE(e.find("jailer"), std::string::npos) << e;
}

TEST(PluginConfigTest, ImageGcIsTheDockerDriversBlock) {
  PluginConfig d;
  EXPECT_TRUE(d.gc.image) << "the docker driver's default: images are collected";
  EXPECT_EQ(d.gc.image_delay, std::chrono::minutes(3));
  // gc { image = false, image_delay = "10m" }, as an object and as the one-element list of block syntax.
  CtyValue block = Obj({{"image", CtyValue::Bool(false)}, {"image_delay", Str("10m")}});
  for (const CtyValue& gc : {block, CtyValue::MakeList({block})}) {
    Result<PluginConfig> r = DecodePluginConfig(Obj({{"gc", gc}}));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->gc.image);
    EXPECT_EQ(r->gc.image_delay, std::chrono::minutes(10));
  }
  Result<PluginConfig> zero = DecodePluginConfig(Obj({{"gc", Obj({{"image_delay", Str("0s")}})}}));
  ASSERT_TRUE(zero.ok()) << zero.error().message();
  EXPECT_TRUE(zero->gc.image);
  EXPECT_EQ(zero->gc.image_delay, std::chrono::milliseconds(0));
  EXPECT_EQ(ErrorOf(Obj({{"gc", Obj({{"image_delay", Str("3")}})}})),
            "plugin config block \"gc\": option \"image_delay\" = \"3\": duration \"3\" needs a unit: ms, s, "
            "m or h");
  EXPECT_EQ(ErrorOf(Obj({{"gc", Obj({{"image_delay", Str("1000h")}})}})),
            "plugin config block \"gc\": option \"image_delay\" = \"1000h\": expected from 0s to 720h");
  std::string unknown = ErrorOf(Obj({{"gc", Obj({{"container", CtyValue::Bool(true)}})}}));
  EXPECT_NE(unknown.find("container"), std::string::npos) << unknown;
}

TEST(PluginConfigTest, EgressGuardIsOnByDefaultAndCanBeTurnedOff) {
  PluginConfig d;
  EXPECT_TRUE(d.egress_guard.enabled);
  EXPECT_EQ(d.egress_guard.cidrs, std::vector<std::string>{"169.254.0.0/16"});
  EXPECT_TRUE(d.egress_guard.gateway);
  CtyValue block = Obj({{"enabled", CtyValue::Bool(false)},
                        {"cidrs", CtyValue::MakeList({Str("169.254.169.254/32"), Str("192.0.2.7")})},
                        {"gateway", CtyValue::Bool(false)}});
  for (const CtyValue& guard : {block, CtyValue::MakeList({block})}) {
    Result<PluginConfig> r = DecodePluginConfig(Obj({{"egress_guard", guard}}));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->egress_guard.enabled);
    EXPECT_EQ(r->egress_guard.cidrs, (std::vector<std::string>{"169.254.169.254/32", "192.0.2.7"}));
    EXPECT_FALSE(r->egress_guard.gateway);
  }
  // Only the options written change; an empty list blocks no CIDR.
  Result<PluginConfig> empty =
      DecodePluginConfig(Obj({{"egress_guard", Obj({{"cidrs", CtyValue::MakeList({})}})}}));
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  EXPECT_TRUE(empty->egress_guard.enabled);
  EXPECT_TRUE(empty->egress_guard.cidrs.empty());
  for (const char* bad : {"169.254.0.0/33", "fe80::/10", "metadata", "10.0.0.0/", "10.0.0.0/x"}) {
    EXPECT_EQ(ErrorOf(Obj({{"egress_guard", Obj({{"cidrs", CtyValue::MakeList({Str(bad)})}})}})),
              std::string("plugin config block \"egress_guard\": option \"cidrs\" = \"") + bad +
                  "\": expected an IPv4 CIDR such as \"169.254.0.0/16\"");
  }
  std::string unknown = ErrorOf(Obj({{"egress_guard", Obj({{"ipv6", CtyValue::Bool(true)}})}}));
  EXPECT_NE(unknown.find("ipv6"), std::string::npos) << unknown;
  std::string not_block = ErrorOf(Obj({{"egress_guard", CtyValue::Bool(false)}}));
  EXPECT_NE(not_block.find("expected one egress_guard block"), std::string::npos) << not_block;
}

TEST(PluginConfigTest, SidecarBridgeIsOnByDefault) {
  EXPECT_TRUE(PluginConfig{}.sidecar_bridge);
  Result<PluginConfig> r = DecodePluginConfig(Obj({{"sidecar_bridge", CtyValue::Bool(false)}}));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE(r->sidecar_bridge);
  std::string bad = ErrorOf(Obj({{"sidecar_bridge", Str("maybe")}}));
  EXPECT_NE(bad.find("sidecar_bridge"), std::string::npos) << bad;
}

TEST(PluginConfigTest, HostNetworkIsOffByDefaultAndTakesARange) {
  PluginConfig d;
  EXPECT_FALSE(d.host_network.enabled);
  EXPECT_EQ(d.host_network.cidr, "10.229.0.0/16");
  Result<PluginConfig> r = DecodePluginConfig(
      Obj({{"host_network", Obj({{"enabled", CtyValue::Bool(true)}, {"cidr", Str("192.168.240.0/24")}})}}));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->host_network.enabled);
  EXPECT_EQ(r->host_network.cidr, "192.168.240.0/24");
  for (const char* bad : {"10.229.0.0/31", "10.229.0.0", "fd00::/64", "ten/8"}) {
    EXPECT_EQ(ErrorOf(Obj({{"host_network", Obj({{"cidr", Str(bad)}})}})),
              std::string("plugin config block \"host_network\": option \"cidr\" = \"") + bad +
                  "\": expected an IPv4 CIDR of at least a /30, such as \"10.229.0.0/16\"");
  }
  std::string unknown = ErrorOf(Obj({{"host_network", Obj({{"mtu", Str("1500")}})}}));
  EXPECT_NE(unknown.find("mtu"), std::string::npos) << unknown;
}

TEST(PluginConfigTest, DurationsAreWrittenAsInJobFiles) {
  using std::chrono::milliseconds;
  EXPECT_EQ(*ParseDuration("90s"), milliseconds(90000));
  EXPECT_EQ(*ParseDuration("5m"), milliseconds(300000));
  EXPECT_EQ(*ParseDuration("1h30m"), milliseconds(5400000));
  EXPECT_EQ(*ParseDuration("1.5h"), milliseconds(5400000));
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("2m30s"), milliseconds(150000));
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("10").ok());
  EXPECT_FALSE(ParseDuration("-5s").ok());
  EXPECT_FALSE(ParseDuration("5 m").ok());
  EXPECT_FALSE(ParseDuration("5d").ok());
  EXPECT_FALSE(ParseDuration("m").ok());
  EXPECT_FALSE(ParseDuration("1.2.3s").ok());
}

}  // namespace
}  // namespace nfc::driver
