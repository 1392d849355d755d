#include "init/host/grow.h"

#include <fcntl.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>

#include "base/fs.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "init/host/mounts.h"

namespace nfc::init::host {
namespace {

constexpr uint64_t kSector = 512;
constexpr uint64_t kAlign = 2048;  // 1 MiB in sectors: partitions end on MiB boundaries
// EXT4_IOC_RESIZE_FS from the kernel's fs/ext4/ext4.h (not in the uapi headers).
constexpr unsigned long kExt4IocResizeFs = _IOW('f', 16, uint64_t);

uint64_t Get64(std::string_view s, size_t off) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(s[off + static_cast<size_t>(i)]);
  return v;
}
uint32_t Get32(std::string_view s, size_t off) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | static_cast<uint8_t>(s[off + static_cast<size_t>(i)]);
  return v;
}
void Put64(std::string& s, size_t off, uint64_t v) {
  for (size_t i = 0; i < 8; i++) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void Put32(std::string& s, size_t off, uint32_t v) {
  for (size_t i = 0; i < 4; i++) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// The header (92 bytes used of its sector) with its CRC field recomputed.
void SealHeader(std::string& header) {
  uint32_t size = Get32(header, 12);
  Put32(header, 16, 0);
  Put32(header, 16, Crc32(std::string_view(header).substr(0, size)));
}

struct Header {
  uint64_t entries_lba;
  uint32_t count, entry_size, header_size;
};
Result<Header> ParseHeader(std::string_view sector1) {
  if (sector1.size() < kSector || sector1.substr(0, 8) != "EFI PART")
    return Error::InvalidArgument("GPT header at LBA 1: no 'EFI PART' signature");
  Header h{Get64(sector1, 72), Get32(sector1, 80), Get32(sector1, 84), Get32(sector1, 12)};
  if (h.header_size < 92 || h.header_size > kSector)
    return Error::InvalidArgument("GPT header size " + std::to_string(h.header_size));
  if (h.entry_size < 128 || h.entry_size > 1024 || h.count == 0 || h.count > 1024 || h.entries_lba < 2)
    return Error::InvalidArgument("GPT entries: " + std::to_string(h.count) + " of " +
                                  std::to_string(h.entry_size) + " bytes at LBA " +
                                  std::to_string(h.entries_lba));
  return h;
}

}  // namespace

uint32_t Crc32(std::string_view data) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) crc = table[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

Result<size_t> GptHeadBytes(std::string_view sector1) {
  auto h = ParseHeader(sector1);
  if (!h.ok()) return h.error();
  return static_cast<size_t>(h->entries_lba * kSector + uint64_t{h->count} * h->entry_size);
}

Result<std::optional<GptGrowth>> PlanGptGrowth(std::string_view head, uint64_t disk_sectors,
                                               uint32_t partno) {
  if (head.size() < 2 * kSector) return Error::InvalidArgument("GPT: disk head shorter than 2 sectors");
  auto h = ParseHeader(head.substr(kSector, kSector));
  if (!h.ok()) return h.error();
  uint64_t entries_bytes = uint64_t{h->count} * h->entry_size;
  if (head.size() < h->entries_lba * kSector + entries_bytes)
    return Error::InvalidArgument("GPT: disk head does not reach the end of the entry array");
  std::string header(head.substr(kSector, kSector));
  std::string_view entries = head.substr(h->entries_lba * kSector, entries_bytes);
  if (Crc32(entries) != Get32(header, 88)) return Error::DataLoss("GPT: entry array CRC mismatch");
  if (partno == 0 || partno > h->count)
    return Error::InvalidArgument("GPT partition " + std::to_string(partno));
  uint64_t entries_sectors = (entries_bytes + kSector - 1) / kSector;
  if (disk_sectors < h->entries_lba + 2 * entries_sectors + 8)
    return Error::InvalidArgument("GPT: disk too small");
  uint64_t last_usable = disk_sectors - 2 - entries_sectors;
  size_t off = static_cast<size_t>(h->entries_lba * kSector + (partno - 1) * uint64_t{h->entry_size});
  uint64_t first = Get64(head, off + 32), last = Get64(head, off + 40);
  // Only the partition that ends last may grow: nothing may lie between it and the disk's end.
  for (uint32_t i = 0; i < h->count; i++) {
    size_t o = static_cast<size_t>(h->entries_lba * kSector + i * uint64_t{h->entry_size});
    if (i + 1 != partno && Get64(head, o + 32) != 0 && Get64(head, o + 40) > last)
      return Error::FailedPrecondition("GPT partition " + std::to_string(partno) + " is not the last one");
  }
  uint64_t new_last = (last_usable + 1) / kAlign * kAlign - 1;
  if (first == 0 || new_last < last + kAlign) return std::optional<GptGrowth>{};
  GptGrowth g;
  g.first_lba = first;
  g.old_last_lba = last;
  g.new_last_lba = new_last;
  g.head = std::string(head);
  Put64(g.head, off + 40, new_last);
  std::string_view new_entries = std::string_view(g.head).substr(h->entries_lba * kSector, entries_bytes);
  Put64(header, 32, disk_sectors - 1);  // alternate LBA: the disk's new last sector
  Put64(header, 48, last_usable);
  Put32(header, 88, Crc32(new_entries));
  std::string backup = header;
  SealHeader(header);
  g.head.replace(kSector, kSector, header);
  // The protective MBR's 0xEE entry covers the whole disk (capped at 32 bits).
  if (static_cast<uint8_t>(g.head[446 + 4]) == 0xEE)
    Put32(g.head, 446 + 12, static_cast<uint32_t>(std::min<uint64_t>(disk_sectors - 1, 0xFFFFFFFFu)));
  g.backup_entries_lba = last_usable + 1;
  g.backup_entries = std::string(new_entries);
  g.backup_entries.resize(entries_sectors * kSector, '\0');
  Put64(backup, 24, disk_sectors - 1);
  Put64(backup, 32, 1);
  Put64(backup, 72, g.backup_entries_lba);
  SealHeader(backup);
  g.backup_header = std::move(backup);
  return std::optional<GptGrowth>(std::move(g));
}

Result<bool> GrowPartitionToDisk(const std::string& device) {
  std::string name = std::filesystem::path(device).filename();
  std::error_code ec;
  auto sys = std::filesystem::canonical("/sys/class/block/" + name, ec);
  if (ec) return Error::NotFound("/sys/class/block/" + name);
  auto partno_text = fs::ReadFile(sys / "partition", 32, fs::FinalSymlink::kFollow);
  if (!partno_text.ok()) return partno_text.error();
  auto partno = static_cast<uint32_t>(std::stoul(*partno_text));
  std::string disk = "/dev/" + sys.parent_path().filename().string();
  UniqueFd fd(::open(disk.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return Error::Errno("open " + disk);
  uint64_t bytes = 0;
  int ssz = 0;
  if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) != 0 || ::ioctl(fd.get(), BLKSSZGET, &ssz) != 0)
    return Error::Errno("BLKGETSIZE64/BLKSSZGET " + disk);
  if (ssz != 512)
    return Error::FailedPrecondition(disk + ": sector size " + std::to_string(ssz) + " (only 512)");
  std::string sector1(kSector, '\0');
  if (::pread(fd.get(), sector1.data(), kSector, kSector) != static_cast<ssize_t>(kSector))
    return Error::Errno("read GPT header of " + disk);
  auto head_bytes = GptHeadBytes(sector1);
  if (!head_bytes.ok()) return head_bytes.error();
  std::string head(*head_bytes, '\0');
  if (::pread(fd.get(), head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()))
    return Error::Errno("read GPT of " + disk);
  auto plan = PlanGptGrowth(head, bytes / kSector, partno);
  if (!plan.ok()) return std::move(plan).error().Context(disk);
  if (!*plan) return false;
  const auto& g = **plan;
  // Backup first (beyond everything in use), then the primary: a power cut in between leaves the old,
  // valid primary, and the next boot tries again.
  auto put = [&](const std::string& data, uint64_t lba) -> Status {
    if (::pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(lba * kSector)) !=
        static_cast<ssize_t>(data.size()))
      return Error::Errno("write " + disk + " at LBA " + std::to_string(lba));
    return Ok();
  };
  NFC_RETURN_IF_ERROR(put(g.backup_entries, g.backup_entries_lba));
  NFC_RETURN_IF_ERROR(put(g.backup_header, bytes / kSector - 1));
  if (::fsync(fd.get()) != 0) return Error::Errno("fsync " + disk);
  NFC_RETURN_IF_ERROR(put(g.head, 0));
  if (::fsync(fd.get()) != 0) return Error::Errno("fsync " + disk);
  blkpg_partition part{};
  part.pno = static_cast<int>(partno);
  uint64_t start_bytes = g.first_lba * kSector, length_bytes = (g.new_last_lba + 1 - g.first_lba) * kSector;
  part.start = static_cast<long long>(start_bytes);
  part.length = static_cast<long long>(length_bytes);
  blkpg_ioctl_arg arg{};
  arg.op = BLKPG_RESIZE_PARTITION;
  arg.datalen = sizeof part;
  arg.data = &part;
  if (::ioctl(fd.get(), BLKPG, &arg) != 0) return Error::Errno("BLKPG_RESIZE_PARTITION " + device);
  return true;
}

Status GrowMountedExt4(const std::string& device, const std::string& mount_point) {
  UniqueFd dev(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (!dev) return Error::Errno("open " + device);
  uint64_t bytes = 0;
  if (::ioctl(dev.get(), BLKGETSIZE64, &bytes) != 0) return Error::Errno("BLKGETSIZE64 " + device);
  struct statfs st;
  if (::statfs(mount_point.c_str(), &st) != 0) return Error::Errno("statfs " + mount_point);
  uint64_t blocks = bytes / static_cast<uint64_t>(st.f_bsize);
  // The superblock's block count (s_blocks_count_lo at 1024+4, _hi at 1024+0x150): nothing to do when it
  // already fills the device (the kernel would log a resize from N to N at every boot).
  std::string sb(1024, '\0');
  if (::pread(dev.get(), sb.data(), sb.size(), 1024) == static_cast<ssize_t>(sb.size()) &&
      (uint64_t{Get32(sb, 0x150)} << 32 | Get32(sb, 4)) >= blocks)
    return Ok();
  UniqueFd dir(::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Error::Errno("open " + mount_point);
  if (::ioctl(dir.get(), kExt4IocResizeFs, &blocks) != 0)
    return Error::Errno("EXT4_IOC_RESIZE_FS " + mount_point + " to " + std::to_string(blocks) + " blocks");
  return Ok();
}

void MountDataGrown(const std::string& partname, bool grow) {
  auto data = FindPartitionByName(partname);
  if (data.ok() && grow) {
    auto grew = GrowPartitionToDisk(*data);
    if (!grew.ok()) log::Warn("data partition not grown", {{"error", grew.error().message()}});
    if (grew.ok() && *grew) log::Info("data partition grown to the end of the disk", {{"device", *data}});
  }
  auto st = data.ok() ? MountData(*data) : MountData("/dev/nonexistent");
  if (!data.ok() || !st.ok()) {
    log::Error("data partition not mounted; using memory: Nomad's state will NOT survive a reboot",
               {{"error", data.ok() ? st.error().message() : data.error().message()}});
    return;
  }
  log::Info("data partition mounted", {{"device", *data}, {"path", "/data"}});
  // Also after a power cut between growing the partition and its filesystem: a no-op when they match.
  if (grow) {
    auto g = GrowMountedExt4(*data, "/data");
    if (!g.ok()) log::Warn("data filesystem not grown", {{"error", g.error().message()}});
  }
}

}  // namespace nfc::init::host
