// Boot-once requests, one per boot loader an image uses: the on-disk and in-variable formats (pure, unit
// tested in boot_once_test.cc). An update's trial is asked for as "boot this entry once" while the default
// stays the committed slot, so a trial kernel that never reaches nomad-init (panic=10, or a reset after a
// hang) comes back on the committed slot: each loader forgets the request as it honours it. Design:
// docs/nomados-updates.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace nfc::init::host {

// syslinux's auxiliary data vector (ADV): the last two 512-byte sectors of ldlinux.sys, two identical copies.
// Each: magic 0x5a2d2fa5, checksum, 500 bytes of records, magic 0xdd28bf64 (32-bit little-endian). The
// checksum makes the sum of the 125 record words plus itself equal 0xa3041767. Records: tag byte, length
// byte, that many bytes; tag 0 ends the list. Tag 1 is the boot-once command (a label), which the loader
// (ldlinux) clears, writing the ADV back through the sectors the installer recorded, before booting it.
inline constexpr size_t kAdvSectorSize = 512;
inline constexpr size_t kAdvSize = 2 * kAdvSectorSize;
inline constexpr uint8_t kAdvBootOnce = 1;

struct AdvRecord {
  uint8_t tag = 0;
  std::string value;  // at most 255 bytes
};
// The records of the first copy that is intact (magics and checksum), else of the second; an error when
// neither is (ldlinux then treats the ADV as empty).
Result<std::vector<AdvRecord>> DecodeAdv(std::string_view two_sectors);
// Both copies of an ADV holding `records`; an error when they do not fit in 500 bytes or a value is too long.
Result<std::string> EncodeAdv(const std::vector<AdvRecord>& records);
// `records` with the boot-once command set to `label` (nullopt: removed); other records are kept.
std::vector<AdvRecord> WithAdvBootOnce(std::vector<AdvRecord> records, std::optional<std::string_view> label);
std::optional<std::string> AdvBootOnce(const std::vector<AdvRecord>& records);

// systemd-boot reads the EFI variable LoaderEntryOneShot (vendor GUID below) as the entry to boot this once,
// and deletes it as it does. Through efivarfs a variable file is its 4-byte attributes (little-endian) then
// the value: the entry id (the entry file's name, "b-trial.conf") as UTF-16LE with a terminating NUL.
inline constexpr const char* kLoaderVendorGuid = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
inline constexpr uint32_t kEfiVariableNonVolatile = 0x1, kEfiVariableBootServiceAccess = 0x2,
                          kEfiVariableRuntimeAccess = 0x4;
// The efivarfs file content for a string variable (attributes: non-volatile, boot service and runtime
// access); an error for non-ASCII text (entry ids here are ASCII).
Result<std::string> EfiStringVariable(std::string_view value);
// The string in an efivarfs file's content (attributes skipped, UTF-16LE up to the NUL); an error if
// malformed.
Result<std::string> ParseEfiStringVariable(std::string_view file);

// GRUB's environment block (grubenv): exactly 1024 bytes, "# GRUB Environment Block\n", then "name=value\n"
// lines, padded with '#'. GRUB's save_env rewrites the file's sectors in place (so it works on FAT, which
// GRUB only writes through the file's existing blocks). grub.cfg reads `next_entry`, boots it and clears it.
inline constexpr size_t kGrubenvSize = 1024;
std::string EmptyGrubenv();
// The block's variables, in order; an error naming what is wrong (size, header, a line without '=').
Result<std::vector<std::pair<std::string, std::string>>> ParseGrubenv(std::string_view block);
// The block with `name` set to `value` (nullopt: removed), other variables kept; an error when it would not
// fit in 1024 bytes or the name/value cannot be written ('=' in the name, newline or '\' in either).
Result<std::string> WithGrubenvVariable(std::string_view block, std::string_view name,
                                        std::optional<std::string_view> value);

}  // namespace nfc::init::host
