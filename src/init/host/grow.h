// The data partition grows to fill the disk (clouds hand out disks larger than the image): the GPT's last
// partition is extended to the disk's end, the backup GPT moved there, the kernel told (BLKPG), and the
// mounted ext4 grown online (EXT4_IOC_RESIZE_FS). No e2fsprogs/sfdisk needed in the image.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc::init::host {

uint32_t Crc32(std::string_view data);

// What to write to grow one partition. `head` is the disk from LBA 0 through the end of the primary entry
// array (protective MBR, header, entries), 512-byte sectors.
struct GptGrowth {
  std::string head;            // the new LBA 0..end of primary entries (write at offset 0)
  std::string backup_entries;  // at backup_entries_lba
  uint64_t backup_entries_lba = 0;
  std::string backup_header;  // one sector at the disk's last LBA
  uint64_t first_lba = 0, old_last_lba = 0, new_last_lba = 0;
};
// nullopt when the partition already ends within 1 MiB of the last usable sector. Errors name the field.
Result<std::optional<GptGrowth>> PlanGptGrowth(std::string_view head, uint64_t disk_sectors, uint32_t partno);
// How many bytes of the disk PlanGptGrowth needs, read from the header at LBA 1 (sector1: its 512 bytes).
Result<size_t> GptHeadBytes(std::string_view sector1);

// Grows partition `device` (e.g. /dev/vda4) to the end of its disk if it is the last one and there is room.
// Returns true if it grew. Call before mounting it.
Result<bool> GrowPartitionToDisk(const std::string& device);
// Grows the ext4 filesystem mounted at mount_point to fill its (grown) block device, online.
Status GrowMountedExt4(const std::string& device, const std::string& mount_point);

// Finds the data partition, grows it (if `grow`), mounts it (mounts.h MountData, tmpfs fallback) and grows
// its filesystem; logs what happened. Also finishes a growth a power cut interrupted between table and
// filesystem.
void MountDataGrown(const std::string& partname, bool grow);

}  // namespace nfc::init::host
