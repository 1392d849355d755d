#include "init/common/modules.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace nfc::init {
namespace {

const char* kDep =
    "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko "
    "kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko "
    "kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
    "kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/virtio/virtio.ko:\n"
    "kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/llc/llc.ko\n"
    "kernel/net/bridge/bridge.ko: kernel/net/llc/llc.ko\n"
    "kernel/net/llc/llc.ko:\n";
const char* kAlias =
    "alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n"
    "alias virtio:d00000002v* virtio_blk\n"
    "alias fs-ext4 ext4\n"
    "alias nft-chain-2-nat nft-chain-nat\n";
const char* kBuiltin = "kernel/fs/ext4/ext4.ko\n";

TEST(ModuleIndex, ResolvesModaliases) {
  auto idx = ModuleIndex::FromText("/m", kDep, kAlias, kBuiltin);
  EXPECT_EQ(idx.Resolve("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"),
            std::vector<std::string>{"virtio_pci"});
  EXPECT_EQ(idx.Resolve("virtio:d00000002v00001AF4"), std::vector<std::string>{"virtio_blk"});
  EXPECT_TRUE(idx.Resolve("pci:v00008086d00001237sv*").empty());
  EXPECT_EQ(idx.Resolve("nft-chain-2-nat"),
            std::vector<std::string>{"nft_chain_nat"});  // dashes fold to underscores
  EXPECT_TRUE(idx.IsBuiltin("ext4"));
  EXPECT_EQ(idx.PathOf("virtio_blk"), "/m/kernel/drivers/block/virtio_blk.ko");
}

TEST(ModuleIndex, LoadOrderPutsDependenciesFirst) {
  auto idx = ModuleIndex::FromText("/m", kDep, kAlias, kBuiltin);
  auto order = idx.LoadOrder("virtio_pci");
  ASSERT_TRUE(order.ok());
  auto pos = [&](const std::string& m) {
    return std::find(order->begin(), order->end(), m) - order->begin();
  };
  ASSERT_EQ(order->size(), 3u);
  EXPECT_LT(pos("virtio"), pos("virtio_ring"));
  auto br = idx.LoadOrder("br_netfilter");
  ASSERT_TRUE(br.ok());
  EXPECT_EQ(*br, (std::vector<std::string>{"llc", "bridge"}));
  EXPECT_FALSE(idx.LoadOrder("nonexistent").ok());
  EXPECT_TRUE(idx.LoadOrder("ext4").ok());  // built in: nothing to load
}

TEST(ReadModaliases, WalksTheTreeAndDeduplicates) {
  auto dir = std::filesystem::temp_directory_path() / ("modalias-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "pci0000:00/0000:00:01.0/virtio0");
  std::ofstream(dir / "pci0000:00/0000:00:01.0/modalias") << "pci:v00001AF4d00001001\n";
  std::ofstream(dir / "pci0000:00/0000:00:01.0/virtio0/modalias") << "virtio:d00000002v00001AF4\n";
  std::ofstream(dir / "pci0000:00/modalias") << "pci:v00001AF4d00001001\n";
  auto all = ReadModaliases(dir.string());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(all, (std::vector<std::string>{"pci:v00001AF4d00001001", "virtio:d00000002v00001AF4"}));
}

}  // namespace
}  // namespace nfc::init
