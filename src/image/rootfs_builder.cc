#include "image/rootfs_builder.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "base/fs.h"
#include "image/ext4_writer.h"
#include "image/layer_scan.h"

namespace nfc::image {
namespace {

// A download may start over a few times (its own retries); a layer read is restarted with it, this often.
constexpr int kMaxRereads = 16;

// Regular files whose data survives, per layer: (entry index, inode), sorted so each spool is read in order.
using DataIndex = std::vector<std::vector<std::pair<uint64_t, Inode*>>>;

void CollectData(Dentry* d, DataIndex* index) {
  Inode* ino = d->inode.get();
  // A hard-linked inode is reached once per name (duplicates are removed after sorting).
  if (S_ISREG(ino->mode) && ino->size > 0 && ino->layer >= 0) {
    (*index)[static_cast<size_t>(ino->layer)].emplace_back(ino->entry, ino);
  }
  for (auto& [_, c] : d->children) CollectData(c.get(), index);
}

Result<LayerScan> CheckDiffId(const LayerInput& in, Result<LayerScan> scan) {
  if (!scan.ok() || in.diff_id.empty() || scan->tar_digest == in.diff_id) return scan;
  return Error::DataLoss("layer " + in.name + ": its uncompressed content hashes to " + scan->tar_digest +
                         " but the image config's rootfs.diff_ids says " + in.diff_id);
}

// Reads one layer, again if its download started over under the reader.
Result<LayerScan> ReadLayer(const LayerInput& in, const std::string& spool_dir,
                            std::atomic<uint64_t>* consumed, const std::atomic<bool>* cancel, int* passes) {
  for (int attempt = 0;; ++attempt) {
    ++*passes;
    consumed->store(0, std::memory_order_relaxed);
    Result<LayerScan> scan = [&]() -> Result<LayerScan> {
      NFC_ASSIGN_OR_RETURN(auto blob, in.open());
      return ScanLayer(std::move(blob), in.name, spool_dir, consumed, cancel);
    }();
    if (cancel->load()) return scan;
    if (!in.settle) return CheckDiffId(in, std::move(scan));
    NFC_ASSIGN_OR_RETURN(bool verified, in.settle());
    if (verified) return CheckDiffId(in, std::move(scan));
    if (attempt + 1 >= kMaxRereads) {
      return Error::Unavailable("layer " + in.name + ": its download started over " +
                                std::to_string(kMaxRereads) + " times");
    }
  }
}

// The layers' scans, all read at once on up to `parallelism` threads; progress is reported on this thread.
Result<std::vector<LayerScan>> ScanAll(const std::vector<LayerInput>& layers, const BuildOptions& options,
                                       int* passes) {
  const size_t n = layers.size();
  std::vector<std::optional<Result<LayerScan>>> results(n);
  std::vector<int> layer_passes(n, 0);
  auto consumed = std::make_unique<std::atomic<uint64_t>[]>(n);
  std::atomic<bool> cancel{false};
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t finished = 0;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      // Once a layer has failed, the layers not started yet are not read (nor waited for).
      auto r = cancel ? Result<LayerScan>(Error(ErrorCode::kCancelled, "cancelled"))
                      : ReadLayer(layers[i], options.spool_dir, &consumed[i], &cancel, &layer_passes[i]);
      if (!r.ok()) cancel = true;
      std::lock_guard<std::mutex> lock(mu);
      results[i] = std::move(r);
      ++finished;
      cv.notify_all();
    }
  };
  uint64_t total = 0;
  for (const auto& l : layers) total += l.size;
  auto report = [&] {
    if (!options.progress) return;
    uint64_t done = 0;
    for (size_t i = 0; i < n; ++i) done += consumed[i].load(std::memory_order_relaxed);
    options.progress(std::min(done, total), total);
  };
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  size_t workers =
      std::min<size_t>(n, options.parallelism > 0 ? static_cast<size_t>(options.parallelism) : cores);
  if (workers <= 1 && !options.progress) {
    work();
  } else {
    std::vector<std::thread> threads;
    for (size_t t = 0; t < std::max<size_t>(workers, 1); ++t) threads.emplace_back(work);
    {
      std::unique_lock<std::mutex> lock(mu);
      while (finished < n) {
        cv.wait_for(lock, std::chrono::milliseconds(100));
        lock.unlock();
        report();
        lock.lock();
      }
    }
    for (auto& t : threads) t.join();
  }
  for (int p : layer_passes) *passes += p;
  // The first layer's own failure, not the cancellation it caused in the others.
  const Error* first = nullptr;
  for (auto& r : results) {
    if (r->ok()) continue;
    if (r->error().code() != ErrorCode::kCancelled) return std::move(*r).error();
    if (!first) first = &r->error();
  }
  if (first) return *first;
  std::vector<LayerScan> scans;
  scans.reserve(n);
  for (auto& r : results) scans.push_back(std::move(**r));
  return scans;
}

}  // namespace

LayerInput ToLayerInput(const LayerFile& file) {
  LayerInput in;
  in.name = file.name;
  in.size = file.bytes ? file.bytes->size() : file.size;
  if (file.bytes) {
    std::string_view bytes = *file.bytes;
    in.open = [bytes]() -> Result<std::unique_ptr<ByteSource>> { return OpenMemorySource(bytes); };
  } else {
    std::string path = file.path;
    in.open = [path]() { return OpenFileSource(path); };
  }
  return in;
}

Result<RootfsStats> BuildRootfs(const std::vector<LayerFile>& layers, const std::string& out_path,
                                const std::string& label, BuildOptions options) {
  std::vector<LayerInput> inputs;
  inputs.reserve(layers.size());
  for (const auto& l : layers) inputs.push_back(ToLayerInput(l));
  return BuildRootfs(inputs, out_path, label, std::move(options));
}

Result<RootfsStats> BuildRootfs(const std::vector<LayerInput>& layers, const std::string& out_path,
                                const std::string& label, BuildOptions options) {
  if (options.spool_dir.empty()) options.spool_dir = fs::DirName(out_path);
  NFC_ASSIGN_OR_RETURN(
      RootfsStats out,
      BuildRootfsWith(
          layers, [&](const Ext4Geometry& g) { return Ext4Writer::Create(out_path, g, label); }, options));
  struct stat st {};
  if (::stat(out_path.c_str(), &st) != 0) return Error::Errno("stat " + out_path);
  out.image_bytes = static_cast<uint64_t>(st.st_size);
  return out;
}

Result<RootfsStats> BuildRootfsWith(const std::vector<LayerInput>& layers, const MakeWriterFn& make_writer,
                                    const BuildOptions& options) {
  if (options.spool_dir.empty()) return Error::InvalidArgument("BuildRootfsWith: no spool directory");
  RootfsStats out;
  auto mark = std::chrono::steady_clock::now();
  auto lap = [&](double* into) {
    auto now = std::chrono::steady_clock::now();
    *into = std::chrono::duration<double>(now - mark).count();
    mark = now;
  };
  NFC_ASSIGN_OR_RETURN(std::vector<LayerScan> scans, ScanAll(layers, options, &out.layer_passes));
  lap(&out.seconds.read);
  LayerTree tree;
  for (size_t i = 0; i < scans.size(); ++i) {
    out.tar_bytes += scans[i].tar_bytes;
    const auto& entries = scans[i].entries;
    for (uint64_t index = 0; index < entries.size(); ++index) {
      NFC_RETURN_IF_ERROR_CTX(tree.Apply(static_cast<int>(i), index, entries[index]),
                              "layer " + layers[i].name);
    }
  }
  out.tree = tree.Finalize();
  lap(&out.seconds.apply);
  NFC_ASSIGN_OR_RETURN(auto writer, make_writer(EstimateGeometry(tree.root(), out.tree)));
  NFC_RETURN_IF_ERROR(writer->CreateTree(tree.root()));
  lap(&out.seconds.metadata);

  DataIndex index(layers.size());
  CollectData(tree.root(), &index);
  for (size_t i = 0; i < scans.size(); ++i) {
    auto& files = index[i];
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    for (const auto& [entry, inode] : files) {
      if (scans[i].data_at[entry] == kNoData) return Error::Internal("a file's data was not spooled");
      NFC_RETURN_IF_ERROR_CTX(writer->WriteFileData(inode, scans[i].spool.get(), scans[i].data_at[entry]),
                              "layer " + layers[i].name + ": write " + scans[i].entries[entry].path);
    }
    NFC_RETURN_IF_ERROR(writer->FlushCopies());
    scans[i] = LayerScan{};  // the spool's space goes back now
  }
  lap(&out.seconds.data);
  NFC_RETURN_IF_ERROR(writer->Finish());
  lap(&out.seconds.sync);
  if (options.progress) {
    uint64_t total = 0;
    for (const auto& l : layers) total += l.size;
    options.progress(total, total);
  }
  return out;
}

}  // namespace nfc::image
