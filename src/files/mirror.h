// files: Nomad's task directories inside the VM (docs/task-files.md). Firecracker has no shared filesystem,
// so each directory is mirrored over the guest control channel: both ends hold a Mirror of the same tree,
// one sends the changes it finds, the other applies them.
//
//   /local, /secrets  host -> guest (the shim sends, nomad-init applies)
//   /alloc            both ways; on a conflict (both sides changed a path since they last agreed) the host's
//                     version wins: the host ignores the guest's change and sends its own
//
// A Mirror remembers what its peer holds (the last state sent or received per path), so SendChanges() after a
// scan sends only the difference, and applying the peer's changes never echoes them back. Changes are found
// by scanning (stat of every entry, cheap for task directories); what triggers a scan is the caller's
// business (TreeWatcher's inotify events, and a synchronous scan before every signal and exec, which is what
// makes template change_mode ordering hold). A scan sees every change completed before it started.
//
// Thread-safe: one mutex serialises scans, sends and applies, so a send in progress completes before a
// barrier's scan starts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"
#include "files/tree.h"
#include "files/writer.h"
#include "guest/agent.pb.h"

namespace nfc::files {

class Mirror {
 public:
  struct Options {
    std::string name;  // the root's name on the wire: "local", "secrets", "alloc"
    std::string root;  // the directory on this side
    Limits limits;
    Exclusions exclude;  // neither sent nor accepted from the peer
    WriterOptions writer;
    bool local_wins_conflicts = false;  // the host's end of /alloc
    size_t chunk_bytes = 256 << 10;     // file data per FileEntry
    size_t batch_bytes = 512 << 10;     // file data per FileBatch (frames are at most 1 MiB)
  };
  using Sender = std::function<Status(::nfc::guest::v1::FileBatch& batch)>;

  static Result<std::unique_ptr<Mirror>> Open(Options options);

  const std::string& name() const { return options_.name; }
  const std::string& root() const { return options_.root; }

  // Scans the tree and hands every change since the peer's last known state to send, batch by batch, in
  // order. Returns the number of entries sent. When send fails, the paths of that batch are sent again next
  // time (the peer's state of them is unknown).
  Result<size_t> SendChanges(const Sender& send);
  // Applies a batch the peer sent. An error names the path; entries before it stay applied.
  Status Apply(const ::nfc::guest::v1::FileBatch& batch);
  // The peer holds nothing we know of (a new VM instance): the next SendChanges sends everything.
  void ForgetPeer();

 private:
  Mirror(Options options, TreeWriter writer) : options_(std::move(options)), writer_(std::move(writer)) {}
  Status SendFile(const std::string& path, ::nfc::guest::v1::FileBatch& batch, size_t& data_bytes,
                  const Sender& send);
  Status Flush(::nfc::guest::v1::FileBatch& batch, size_t& data_bytes, const Sender& send);
  Status ApplyEntry(const ::nfc::guest::v1::FileEntry& entry);
  bool ChangedHere(const std::string& path);
  void Forget(const std::string& path);  // path and everything below it
  void SetKnown(const std::string& path, const EntryMeta& meta);

  Options options_;
  std::mutex mu_;
  TreeWriter writer_;
  Snapshot known_;                     // what the peer holds, in this side's terms
  uint64_t known_bytes_ = 0;           // the sum of known_'s file sizes
  std::set<std::string> uncertain_;    // sent in a batch that failed
  std::set<std::string> batch_paths_;  // paths of the batch being built
  std::set<std::string> skipping_;  // files of the peer's being ignored (local wins) until their last chunk
};

// Tells when anything below a directory changed: inotify on every directory of the tree (new directories are
// added as they appear; a queue overflow counts as a change). Poll fd() for readability, then Drain().
class TreeWatcher {
 public:
  static Result<std::unique_ptr<TreeWatcher>> Open(const std::string& root, Exclusions exclude = {});
  int fd() const { return inotify_.get(); }
  // Reads what is pending without blocking; true when something changed.
  Result<bool> Drain();

 private:
  explicit TreeWatcher(UniqueFd fd) : inotify_(std::move(fd)) {}
  Status WatchTree(const std::string& dir, int depth);

  UniqueFd inotify_;
  std::string root_;
  Exclusions exclude_;
  std::map<int, std::string> dirs_;  // watch descriptor -> directory
};

}  // namespace nfc::files
