#include "files/mirror.h"

#include <sys/stat.h>
#include <unistd.h>

namespace nfc::files {

namespace pb = ::nfc::guest::v1;

namespace {

pb::FileKind WireKind(EntryKind kind) {
  switch (kind) {
    case EntryKind::kFile:
      return pb::FILE_KIND_FILE;
    case EntryKind::kDirectory:
      return pb::FILE_KIND_DIRECTORY;
    case EntryKind::kSymlink:
      return pb::FILE_KIND_SYMLINK;
    case EntryKind::kRemoved:
      return pb::FILE_KIND_REMOVED;
  }
  return pb::FILE_KIND_UNSPECIFIED;
}

pb::FileEntry* AddEntry(pb::FileBatch& batch, const std::string& path, const EntryMeta& meta) {
  pb::FileEntry* e = batch.add_entries();
  e->set_path(path);
  e->set_kind(WireKind(meta.kind));
  e->set_mode(meta.mode);
  e->set_uid(meta.uid);
  e->set_gid(meta.gid);
  e->set_mtime_ns(meta.mtime_ns);
  e->set_link_target(meta.link_target);
  return e;
}

}  // namespace

Result<std::unique_ptr<Mirror>> Mirror::Open(Options options) {
  NFC_ASSIGN_OR_RETURN(TreeWriter writer, TreeWriter::Open(options.root, options.writer));
  return std::unique_ptr<Mirror>(new Mirror(std::move(options), std::move(writer)));
}

void Mirror::ForgetPeer() {
  std::lock_guard lock(mu_);
  known_.clear();
  known_bytes_ = 0;
  uncertain_.clear();
}

void Mirror::Forget(const std::string& path) {
  EraseSubtree(known_, path, [this](const EntryMeta& meta) {
    if (meta.kind == EntryKind::kFile) known_bytes_ -= meta.size;
  });
}

void Mirror::SetKnown(const std::string& path, const EntryMeta& meta) {
  auto it = known_.find(path);
  if (it != known_.end() && it->second.kind != meta.kind) {
    Forget(path);  // a directory replaced by a file takes what was below it along
  } else if (it != known_.end() && it->second.kind == EntryKind::kFile) {
    known_bytes_ -= it->second.size;
  }
  known_[path] = meta;
  if (meta.kind == EntryKind::kFile) known_bytes_ += meta.size;
}

Status Mirror::Flush(pb::FileBatch& batch, size_t& data_bytes, const Sender& send) {
  if (batch.entries_size() == 0) return Ok();
  batch.set_root(options_.name);
  Status sent = send(batch);
  if (!sent.ok()) uncertain_.insert(batch_paths_.begin(), batch_paths_.end());
  batch.Clear();
  batch_paths_.clear();
  data_bytes = 0;
  return sent;
}

Result<size_t> Mirror::SendChanges(const Sender& send) {
  std::lock_guard lock(mu_);
  NFC_ASSIGN_OR_RETURN(Snapshot now, ScanTree(options_.root, options_.limits, options_.exclude));
  std::vector<Change> changes;
  for (const auto& path : uncertain_) {
    Forget(path);
    if (!now.count(path)) changes.push_back({path, EntryMeta{.kind = EntryKind::kRemoved}});
  }
  uncertain_.clear();
  for (auto& c : Diff(known_, now, true)) changes.push_back(std::move(c));

  pb::FileBatch batch;
  size_t data_bytes = 0;
  for (const Change& c : changes) {
    batch_paths_.insert(c.path);
    if (c.meta.kind == EntryKind::kFile) {
      NFC_RETURN_IF_ERROR(SendFile(c.path, batch, data_bytes, send));
      continue;
    }
    AddEntry(batch, c.path, c.meta);
    if (c.meta.kind == EntryKind::kRemoved) {
      Forget(c.path);
    } else {
      SetKnown(c.path, c.meta);
    }
    if (batch.entries_size() >= 1000) NFC_RETURN_IF_ERROR(Flush(batch, data_bytes, send));
  }
  NFC_RETURN_IF_ERROR(Flush(batch, data_bytes, send));
  return changes.size();
}

// Reads the file as it is now (not as the scan saw it): the state recorded is the one of the bytes sent, so a
// change during the read is sent again by the next scan.
Status Mirror::SendFile(const std::string& path, pb::FileBatch& batch, size_t& data_bytes,
                        const Sender& send) {
  auto fd = writer_.OpenForRead(path);
  if (!fd.ok()) {
    if (fd.error().code() == ErrorCode::kNotFound) return Ok();  // gone since the scan: the next one says so
    return std::move(fd).error();
  }
  struct stat st;
  if (fstat(fd->get(), &st) != 0) return Error::Errno("stat " + path);
  if (!S_ISREG(st.st_mode)) return Ok();
  EntryMeta meta = MetaFromStat(st);
  uint64_t offset = 0;
  std::string buffer;
  while (true) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(options_.chunk_bytes, meta.size - offset));
    buffer.resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t n = pread(fd->get(), buffer.data() + got, want - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::Errno("read " + path);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    buffer.resize(got);
    bool last = offset + got >= meta.size || got < want;
    if (last) meta.size = offset + got;  // shrank while we read: the last chunk says where it ends
    pb::FileEntry* e = AddEntry(batch, path, meta);
    e->set_size(meta.size);
    e->set_offset(offset);
    e->set_data(buffer);
    e->set_last(last);
    offset += got;
    data_bytes += got;
    if (last) break;
    if (data_bytes >= options_.batch_bytes) NFC_RETURN_IF_ERROR(Flush(batch, data_bytes, send));
  }
  SetKnown(path, meta);
  if (data_bytes >= options_.batch_bytes || batch.entries_size() >= 1000)
    NFC_RETURN_IF_ERROR(Flush(batch, data_bytes, send));
  return Ok();
}

// A path this side changed since it last agreed with the peer (not sent yet): for local_wins_conflicts.
bool Mirror::ChangedHere(const std::string& path) {
  auto here = writer_.Stat(path);
  if (!here.ok()) return false;
  auto it = known_.find(path);
  if (it == known_.end()) return here->has_value();
  return !here->has_value() || !SameState(**here, it->second, true);
}

Status Mirror::Apply(const pb::FileBatch& batch) {
  std::lock_guard lock(mu_);
  for (const pb::FileEntry& e : batch.entries()) {
    NFC_RETURN_IF_ERROR_CTX(ApplyEntry(e), "apply to " + options_.name);
  }
  return Ok();
}

Status Mirror::ApplyEntry(const pb::FileEntry& e) {
  NFC_RETURN_IF_ERROR(CheckRelativePath(e.path()));
  const std::string& path = e.path();
  if (options_.exclude.count(path.substr(0, path.find('/')))) {
    return Error::InvalidArgument("task files: \"" + path + "\" is in a part of " + options_.name +
                                  " that is not mirrored");
  }
  bool first = e.kind() != pb::FILE_KIND_FILE || e.offset() == 0;
  if (first) {
    skipping_.erase(path);
    if (options_.local_wins_conflicts && ChangedHere(path)) skipping_.insert(path);
  }
  if (skipping_.count(path)) {
    if (e.kind() != pb::FILE_KIND_FILE || e.last()) skipping_.erase(path);
    return Ok();
  }
  if (e.kind() == pb::FILE_KIND_FILE && e.offset() == 0) {
    auto it = known_.find(path);
    uint64_t replaced = it != known_.end() && it->second.kind == EntryKind::kFile ? it->second.size : 0;
    // What the tree will hold once every file being received is in place (while a file is replaced, its old
    // version stays on disk until the rename: at most twice the limit, briefly). Each file being received
    // passed this check, so the sum cannot wrap; a peer's size may be anything.
    uint64_t others = known_bytes_ - replaced + writer_.ReceivingBytes(path);
    const uint64_t max = options_.limits.max_bytes;
    if (e.size() > max || others > max - e.size()) {
      return Error(ErrorCode::kResourceExhausted, "task files: \"" + path + "\" (" +
                                                      std::to_string(e.size()) + " bytes) would take " +
                                                      options_.name + " past its limit of " +
                                                      std::to_string(options_.limits.max_bytes) + " bytes");
    }
  }
  NFC_ASSIGN_OR_RETURN(bool completed, writer_.Apply(e));
  if (!completed) return Ok();
  if (e.kind() == pb::FILE_KIND_REMOVED) {
    Forget(path);
    return Ok();
  }
  NFC_ASSIGN_OR_RETURN(auto now, writer_.Stat(path));
  if (now) {
    SetKnown(path, *now);
  } else {
    Forget(path);
  }
  return Ok();
}

}  // namespace nfc::files
