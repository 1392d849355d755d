#include "plugin/stop_signal.h"

#include <grpcpp/server_context.h>

#include <algorithm>

namespace nfc::plugin {

void StopSignal::Trigger() {
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
  }
  cv_.notify_all();
}

bool StopSignal::triggered() const {
  std::lock_guard lock(mu_);
  return triggered_;
}

void StopSignal::WaitUntilTriggered() const {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return triggered_; });
}

bool StopSignal::WaitUntilTriggeredFor(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return triggered_; });
}

StopSignal::Wake StopSignal::WaitFor(const grpc::ServerContext* ctx,
                                     std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  for (;;) {
    if (triggered_) return Wake::kStopping;
    // IsCancelled() is only meaningful once the call has started, which is true for any handler calling this.
    if (ctx != nullptr && ctx->IsCancelled()) return Wake::kCancelled;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return Wake::kTimeout;
    const auto slice = std::min<std::chrono::steady_clock::duration>(deadline - now, kCancelPollInterval);
    cv_.wait_for(lock, slice);
  }
}

StopSignal::Wake StopSignal::WaitUntilDone(const grpc::ServerContext* ctx) const {
  for (;;) {
    Wake wake = WaitFor(ctx, std::chrono::hours(24));
    if (wake != Wake::kTimeout) return wake;
  }
}

}  // namespace nfc::plugin
