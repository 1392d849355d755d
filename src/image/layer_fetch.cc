#include "image/layer_fetch.h"

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "image/growing_blob.h"

namespace nfc::image {
namespace {

// Progress at most every 200 ms (a phase change is always reported).
class Throttle {
 public:
  bool Due() {
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(200)) return false;
    last_ = now;
    return true;
  }

 private:
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

Result<RootfsStats> FetchAndBuild(const Manifest& m, const ImageConfig& config, const LayerFetcher& fetch,
                                  const std::string& staging, const std::string& label,
                                  const ProgressFn& report, std::vector<UniqueFd>* holds) {
  const size_t n = m.layers.size();
  const int layers_total = static_cast<int>(n);
  uint64_t total = 0;
  for (const auto& l : m.layers) total += static_cast<uint64_t>(l.size);
  std::vector<std::unique_ptr<GrowingBlob>> blobs;
  // Like containerd, an image config that lists diff_ids must list one per layer; one without them (some
  // hand-made images) is converted unchecked.
  if (!config.diff_ids.empty() && config.diff_ids.size() != n) {
    return Error::InvalidArgument("image config: rootfs.diff_ids lists " +
                                  std::to_string(config.diff_ids.size()) + " layers, the manifest " +
                                  std::to_string(n));
  }
  std::vector<LayerInput> inputs;
  for (size_t i = 0; i < n; ++i) {
    const auto& l = m.layers[i];
    auto* blob = blobs.emplace_back(std::make_unique<GrowingBlob>()).get();
    inputs.push_back({l.digest, static_cast<uint64_t>(l.size), [blob] { return blob->Open(); },
                      [blob] { return blob->Settle(); }, config.diff_ids.empty() ? "" : config.diff_ids[i]});
  }
  std::vector<UniqueFd> layer_holds(n);
  std::atomic<bool> stop{false};
  std::atomic<int> fetched{0};
  report({Progress::Phase::kDownloading, "Downloading image", 0, total, 0, layers_total});
  std::thread fetcher([&] {
    std::map<std::string, Status> fetched_digests;  // a layer listed twice is fetched (and locked) once
    for (size_t i = 0; i < n; ++i) {
      if (stop) {
        blobs[i]->Finish(Error(ErrorCode::kCancelled, "cancelled: another layer failed"));
        continue;
      }
      if (auto seen = fetched_digests.find(m.layers[i].digest); seen != fetched_digests.end()) {
        Status st = seen->second;
        if (st.ok()) st = fetch.attach_cached(m.layers[i], blobs[i].get());
        fetched = static_cast<int>(i + 1);
        blobs[i]->Finish(std::move(st));
        continue;
      }
      auto hold = fetch.ensure(m.layers[i], blobs[i].get());
      fetched_digests.emplace(m.layers[i].digest, hold.ok() ? Ok() : Status(hold.error()));
      if (hold.ok()) layer_holds[i] = std::move(*hold);
      fetched = static_cast<int>(i + 1);  // before Finish: a reader settled on it sees the count
      blobs[i]->Finish(hold.ok() ? Ok() : Status(std::move(hold).error()));
    }
  });
  Throttle throttle;
  bool building = false;
  BuildOptions options;
  options.spool_dir = staging;
  options.progress = [&](uint64_t done, uint64_t all) {
    const bool phase_changed = !building && fetched == layers_total;  // always reported
    if (!phase_changed && !throttle.Due()) return;
    building = fetched == layers_total;
    if (!building) {
      uint64_t got = 0;
      for (auto& b : blobs) got += b->written();
      report({Progress::Phase::kDownloading, "Downloading image", got, total, fetched.load(), layers_total});
    } else {
      report({Progress::Phase::kBuildingRootfs, "Building root filesystem", done, all, 0, layers_total});
    }
  };
  auto stats = BuildRootfs(inputs, staging + "/rootfs.ext4", label, options);
  stop = true;
  fetcher.join();
  for (auto& h : layer_holds) {
    if (h) holds->push_back(std::move(h));
  }
  return stats;
}

}  // namespace nfc::image
