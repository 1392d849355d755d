#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "init/common/modules.h"
#include "init/common/mounts.h"
#include "init/common/netlink.h"
#include "init/common/signals.h"
#include "init/common/system.h"
#include "temp_dir.h"

namespace nfc::init {
namespace {

// Formats an 8 MiB file with a real mkfs and names what nomad-init's probe reads in it.
std::string DetectMade(const test_support::TempDir& dir, const std::string& mkfs) {
  std::string image = dir.Path("disk.img");
  std::string cmd =
      "rm -f " + image + " && truncate -s 8M " + image + " && " + mkfs + " " + image + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return "mkfs failed: " + mkfs;
  auto type = DetectFilesystem(image);
  return type.ok() ? *type : type.error().message();
}

TEST(DetectFilesystem, NamesWhatRealMkfsToolsWrite) {
  test_support::TempDir dir("fs-detect");
  EXPECT_EQ(DetectMade(dir, "mke2fs -q -F -t ext2"), "ext4");
  EXPECT_EQ(DetectMade(dir, "mke2fs -q -F -t ext4"), "ext4");
  EXPECT_EQ(DetectMade(dir, "mkfs.vfat"), "vfat");
  std::string swap = DetectMade(dir, "mkswap");
  EXPECT_NE(swap.find("holds swap nomad-init can mount"), std::string::npos) << swap;
  std::string blank = DetectMade(dir, "true");
  EXPECT_NE(blank.find("disk.img holds no filesystem"), std::string::npos) << blank;
  EXPECT_NE(blank.find("format the volume on the host"), std::string::npos) << blank;
  EXPECT_EQ(FilesystemFromSuperblock(""), "");
  EXPECT_EQ(FilesystemFromSuperblock(std::string(0x439, '\0')), "");  // too short for the ext magic
  auto missing = DetectFilesystem(dir.Path("absent"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(KernelCmdline, ParsesWordsValuesAndQuotes) {
  auto m = ParseKernelCmdline("console=ttyS0 quiet nomad.role=guest  x=\"a b\" console=hvc0\n");
  EXPECT_EQ(m.at("console"), "hvc0");  // last wins
  EXPECT_EQ(m.at("quiet"), "");
  EXPECT_EQ(m.at("nomad.role"), "guest");
  EXPECT_EQ(m.at("x"), "a b");
  EXPECT_EQ(m.count("y"), 0u);
}

TEST(Cidr, ParsesV4V6AndRejectsBadPrefixes) {
  auto a = ParseCidr("10.1.2.3/24");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->family, AF_INET);
  EXPECT_EQ(a->prefix, 24);
  EXPECT_EQ(a->addr[3], 3);
  auto b = ParseCidr("fd00::2");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->family, AF_INET6);
  EXPECT_EQ(b->prefix, 128);
  EXPECT_EQ(ParseCidr("default")->prefix, 0);
  EXPECT_FALSE(ParseCidr("10.0.0.1/33").ok());
  EXPECT_FALSE(ParseCidr("10.0.0.1/").ok());
  auto bad = ParseCidr("eth0");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().ToString().find("\"eth0\" is not an IPv4 or IPv6 address"), std::string::npos);
}

TEST(Modules, OrdersDependenciesFirst) {
  const char* dep =
      "kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio_ring.ko "
      "kernel/drivers/virtio/virtio.ko\n"
      "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko "
      "kernel/drivers/virtio/virtio.ko\n"
      "kernel/drivers/virtio/virtio.ko:\n"
      "kernel/drivers/virtio/virtio_ring.ko:\n"
      "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko: "
      "kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko "
      "kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n"
      "kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko\n"
      "kernel/net/vmw_vsock/vsock.ko:\n";
  auto order = ModuleLoadOrder(dep, {});
  ASSERT_TRUE(order.ok()) << order.error().ToString();
  auto pos = [&](const std::string& name) {
    for (size_t i = 0; i < order->size(); i++) {
      if (ModuleNameOf((*order)[i]) == name) return static_cast<int>(i);
    }
    return -1;
  };
  EXPECT_EQ(order->size(), 7u);
  EXPECT_LT(pos("virtio_ring"), pos("virtio_mmio"));
  EXPECT_LT(pos("virtio"), pos("virtio_blk"));
  EXPECT_LT(pos("vsock"), pos("vmw_vsock_virtio_transport_common"));
  EXPECT_LT(pos("vmw_vsock_virtio_transport_common"), pos("vmw_vsock_virtio_transport"));

  auto only = ModuleLoadOrder(dep, {"virtio_blk"});
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->size(), 3u);
  EXPECT_EQ(ModuleNameOf(only->back()), "virtio_blk");
  EXPECT_FALSE(ModuleLoadOrder(dep, {"nope"}).ok());
  EXPECT_FALSE(ModuleLoadOrder("a.ko: b.ko\nb.ko: a.ko\n", {}).ok());
  EXPECT_EQ(ModuleNameOf("kernel/x/nf-conntrack.ko"), "nf_conntrack");
}

TEST(Signals, ExitCodesFollowShellConvention) {
  pid_t a = fork();
  if (a == 0) _exit(3);
  int status;
  ASSERT_EQ(waitpid(a, &status, 0), a);
  EXPECT_EQ(ExitCodeFromWaitStatus(status), 3);
  EXPECT_EQ(SignalFromWaitStatus(status), 0);
  pid_t b = fork();
  if (b == 0) {
    pause();
    _exit(0);
  }
  kill(b, SIGKILL);
  ASSERT_EQ(waitpid(b, &status, 0), b);
  EXPECT_EQ(ExitCodeFromWaitStatus(status), 137);
  EXPECT_EQ(SignalFromWaitStatus(status), SIGKILL);
  EXPECT_EQ(SignalName(SIGTERM), "SIGTERM");
}

}  // namespace
}  // namespace nfc::init
