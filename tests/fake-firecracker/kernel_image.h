// The kernel checks Firecracker makes at InstanceStart on x86_64 (vmm.md 5.1): up to 1.16 it loads only an
// uncompressed ELF vmlinux, through linux-loader's ELF loader, so a bzImage or any other file fails the
// start.
//
// Checked like that loader: ELF magic, little-endian, 56-byte program headers placed after the ELF header,
// an entry point at or above the 1 MiB where Firecracker's high memory starts, every PT_LOAD segment inside
// the file and inside guest memory, and a well-formed PVH note when one is present. Stricter than the loader
// on purpose: the image must be ELF64 for x86-64 and have something to load (the real VMM would start such
// a file and the guest would die, which no test wants to pass).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/error.h"

namespace nfc::fakefc {

struct KernelImage {
  uint64_t entry = 0;                 // the 64-bit Linux boot entry (e_entry)
  std::optional<uint32_t> pvh_entry;  // XEN_ELFNOTE_PHYS32_ENTRY, when the image carries that note
  uint64_t end = 0;                   // first guest address above the loaded segments
};

// Error messages read like the loader's ("Kernel Loader: Invalid Elf magic number").
Result<KernelImage> InspectElfKernel(const std::string& path, uint64_t guest_memory_bytes);

}  // namespace nfc::fakefc
