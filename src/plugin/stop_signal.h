// StopSignal: the plugin process's one "we are shutting down" flag, shared by the server and every long-lived
// stream handler (go-plugin's Stdio/Broker streams, the driver's Fingerprint/TaskEvents/WaitTask...).
//
// gRPC's synchronous API offers no wake-up on client cancellation, so waiting handlers sleep on this signal
// in short slices and look at ServerContext::IsCancelled() between them: a stopping server wakes them at
// once, a vanished client (agent crash) is noticed within kCancelPollInterval. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace grpc {
class ServerContext;
}

namespace nfc::plugin {

class StopSignal {
 public:
  static constexpr std::chrono::milliseconds kCancelPollInterval{100};

  enum class Wake { kTimeout, kCancelled, kStopping };

  void Trigger();
  bool triggered() const;
  void WaitUntilTriggered() const;
  // False if `timeout` passed first.
  bool WaitUntilTriggeredFor(std::chrono::milliseconds timeout) const;

  // Waits up to `timeout` (nullopt-like: pass a huge value to wait for ever); returns early when the server
  // stops (kStopping) or the client cancels the call (kCancelled). `ctx` may be null.
  Wake WaitFor(const grpc::ServerContext* ctx, std::chrono::milliseconds timeout) const;
  // Waits until the call is cancelled or the server stops.
  Wake WaitUntilDone(const grpc::ServerContext* ctx) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool triggered_ = false;  // guarded by mu_
};

}  // namespace nfc::plugin
