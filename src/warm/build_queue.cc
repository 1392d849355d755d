#include "warm/build_queue.h"

#include "base/log.h"

namespace nfc::warm {

BuildQueue::BuildQueue(DoneFn done) : done_(std::move(done)) {}

BuildQueue::~BuildQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool BuildQueue::Add(const std::string& key, TemplateStore store, TemplateInputs inputs,
                     BuildOptions options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || !keys_.insert(key).second) return false;
  queue_.push_back({key, std::move(store), std::move(inputs), options});
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  cv_.notify_all();
  return true;
}

void BuildQueue::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Result<Template> built = job.store.Build(job.inputs, job.options);
    if (!built.ok()) {
      log::Warn("could not build a warm-start template",
                {{"key", job.key}, {"error", built.error().message()}});
    }
    if (done_) done_(job.key, built);
    lock.lock();
    keys_.erase(job.key);
    finished_++;
    cv_.notify_all();
  }
}

void BuildQueue::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return keys_.empty(); });
}

size_t BuildQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_.size();
}

size_t BuildQueue::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

}  // namespace nfc::warm
