// TreeWriter: applies FileEntry changes (guest/agent.proto) to a directory tree, strictly beneath its root.
//
// A file's chunks go to a temp file next to the final name (kTempPrefix, mode 0600) and the last chunk
// renames it into place after owner, mode and mtime are set, so a reader sees the old file or the new one,
// never a part (the way Nomad's own template renderer replaces files). Directories and symlinks are created
// or updated in place; a path whose kind changes is replaced (a directory with everything below it). No
// symlink is ever followed, so a peer cannot make the writer touch anything outside the root.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"
#include "files/tree.h"
#include "guest/agent.pb.h"

namespace nfc::files {

struct WriterOptions {
  // The host writing what a guest sent: setuid/setgid bits are dropped, so a VM never plants a set-id file
  // on its host.
  bool strip_setid = false;
};

class TreeWriter {
 public:
  static Result<TreeWriter> Open(const std::string& root, WriterOptions options);
  TreeWriter(TreeWriter&&) noexcept;
  TreeWriter& operator=(TreeWriter&&) noexcept;
  ~TreeWriter();

  // Applies one entry; true when it completed a path (every kind but a file's non-final chunk).
  Result<bool> Apply(const ::nfc::guest::v1::FileEntry& entry);
  // The current state of path (nullopt when it is missing); never follows a final symlink.
  Result<std::optional<EntryMeta>> Stat(std::string_view path) const;
  // Opens path for reading beneath the root (no symlink followed); kNotFound when missing.
  Result<UniqueFd> OpenForRead(std::string_view path) const;
  // Drops every partly received file (their temp files are removed).
  void DiscardPending();
  // The sizes the files being received declared, but for `except` (a file about to start over).
  uint64_t ReceivingBytes(std::string_view except) const;

  // Files received at once: our own sender finishes one file before it starts the next, so this only
  // bounds what a misbehaving peer can hold open (two descriptors and a temp file each).
  static constexpr size_t kMaxReceiving = 16;

 private:
  struct Pending {
    UniqueFd parent;
    UniqueFd file;
    std::string temp;
    std::string leaf;
    uint64_t next_offset = 0;
    uint64_t declared_size = 0;  // from the first chunk: later chunks may end the file earlier, never later
  };

  TreeWriter(UniqueFd root, WriterOptions options) : root_(std::move(root)), options_(options) {}
  Status ApplyChunk(const ::nfc::guest::v1::FileEntry& entry, bool& completed);
  Status Finish(const std::string& path, Pending& p, const ::nfc::guest::v1::FileEntry& entry);
  Status MakeDirectory(int parent, const std::string& leaf, const ::nfc::guest::v1::FileEntry& entry);
  Status MakeSymlink(int parent, const std::string& leaf, const ::nfc::guest::v1::FileEntry& entry);
  uint32_t ModeOf(const ::nfc::guest::v1::FileEntry& entry) const;
  void DropPending(std::string_view path);  // path and everything below it

  UniqueFd root_;
  WriterOptions options_;
  std::map<std::string, Pending> pending_;
  uint64_t temp_counter_ = 0;
};

// Removes leaf (and, for a directory, everything below it) from parent without following symlinks. A
// missing leaf is OK.
Status RemoveBeneath(int parent, const std::string& leaf);

}  // namespace nfc::files
