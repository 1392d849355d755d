#include "kernel_image.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace nfc::fakefc {
namespace {

constexpr uint64_t kHighMemoryStart = 1 << 20;  // Firecracker loads x86_64 kernels at or above 1 MiB
constexpr uint32_t kPvhEntryNote = 18;          // XEN_ELFNOTE_PHYS32_ENTRY

Error LoaderError(const std::string& what) {
  return Error::InvalidArgument("Kernel Loader: " + what);
}

class ImageFile {
 public:
  explicit ImageFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~ImageFile() { ::close(fd_); }
  uint64_t size() const { return size_; }
  // False when [offset, offset+len) is not all inside the file.
  bool Read(uint64_t offset, void* out, size_t len) const {
    if (offset > size_ || len > size_ - offset) return false;
    return ::pread(fd_, out, len, static_cast<off_t>(offset)) == static_cast<ssize_t>(len);
  }

 private:
  int fd_;
  uint64_t size_;
};

Result<uint64_t> AlignUp(uint64_t value, uint64_t align) {
  if (align <= 1) return value;
  if ((align & (align - 1)) != 0) return LoaderError("Invalid alignment");
  if (value > UINT64_MAX - (align - 1))
    return LoaderError("Overflow occurred during an arithmetic operation");
  return (value + align - 1) & ~(align - 1);
}

// Walks the notes of one PT_NOTE segment for the PVH entry point.
Result<std::optional<uint32_t>> FindPvhEntry(const ImageFile& f, const Elf64_Phdr& ph) {
  uint64_t pos = 0;
  while (pos < ph.p_filesz) {
    Elf64_Nhdr nh;
    if (!f.Read(ph.p_offset + pos, &nh, sizeof nh)) return LoaderError("Unable to read note header");
    uint64_t name_at = ph.p_offset + pos + sizeof nh;
    char name[4] = {};
    if (nh.n_type == kPvhEntryNote && nh.n_namesz == 4 && f.Read(name_at, name, 4) &&
        std::memcmp(name, "Xen", 4) == 0) {
      NFC_ASSIGN_OR_RETURN(uint64_t name_len, AlignUp(nh.n_namesz, ph.p_align));
      uint32_t entry = 0;
      if (nh.n_descsz < sizeof entry || !f.Read(name_at + name_len, &entry, sizeof entry)) {
        return LoaderError("Invalid PVH note header");
      }
      return std::optional<uint32_t>(entry);
    }
    NFC_ASSIGN_OR_RETURN(uint64_t name_len, AlignUp(nh.n_namesz, ph.p_align));
    NFC_ASSIGN_OR_RETURN(uint64_t desc_len, AlignUp(nh.n_descsz, ph.p_align));
    pos += sizeof nh + name_len + desc_len;
  }
  return std::optional<uint32_t>();
}

Status CheckHeader(const Elf64_Ehdr& eh) {
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return LoaderError("Invalid Elf magic number");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return LoaderError("Trying to load big-endian binary on little-endian machine");
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
    return LoaderError("not an ELF64 x86-64 image (class " + std::to_string(eh.e_ident[EI_CLASS]) +
                       ", machine " + std::to_string(eh.e_machine) + ")");
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) return LoaderError("Invalid program header size");
  if (eh.e_phoff < sizeof(Elf64_Ehdr)) return LoaderError("Invalid program header offset");
  if (eh.e_entry < kHighMemoryStart) return LoaderError("Invalid entry address");
  return Ok();
}

// A PT_LOAD segment must come from the file and land inside guest memory.
Status CheckLoadSegment(const ImageFile& f, const Elf64_Phdr& ph, uint64_t guest_memory_bytes) {
  if (ph.p_offset > f.size() || ph.p_filesz > f.size() - ph.p_offset) {
    return LoaderError("Unable to read kernel image");
  }
  if (ph.p_paddr < kHighMemoryStart) return LoaderError("Invalid Program Header Address");
  if (ph.p_memsz > UINT64_MAX - ph.p_paddr)
    return LoaderError("Overflow occurred during an arithmetic operation");
  if (ph.p_paddr + ph.p_filesz > guest_memory_bytes) return LoaderError("Unable to read kernel image");
  return Ok();
}

}  // namespace

Result<KernelImage> InspectElfKernel(const std::string& path, uint64_t guest_memory_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::Errno("open kernel " + path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Error e = Error::Errno("stat kernel " + path);
    ::close(fd);
    return e;
  }
  ImageFile f(fd, static_cast<uint64_t>(st.st_size));
  Elf64_Ehdr eh;
  if (!f.Read(0, &eh, sizeof eh)) return LoaderError("Unable to read elf header");
  NFC_RETURN_IF_ERROR(CheckHeader(eh));
  KernelImage image;
  image.entry = eh.e_entry;
  for (uint16_t i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    if (!f.Read(eh.e_phoff + uint64_t{i} * sizeof ph, &ph, sizeof ph)) {
      return LoaderError("Unable to read program header");
    }
    if (ph.p_type == PT_NOTE) {
      NFC_ASSIGN_OR_RETURN(auto pvh, FindPvhEntry(f, ph));
      if (pvh) image.pvh_entry = pvh;
    }
    if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
    NFC_RETURN_IF_ERROR(CheckLoadSegment(f, ph, guest_memory_bytes));
    image.end = std::max(image.end, ph.p_paddr + ph.p_memsz);
  }
  if (image.end == 0) return LoaderError("no PT_LOAD segment with contents: nothing to boot");
  return image;
}

}  // namespace nfc::fakefc
