// BuildQueue: the background builds of templates in one process. One build at a time on a thread of its own
// (a template build boots a VM: several at once would only slow the tasks starting meanwhile), each key at
// most once in the queue; TemplateStore's lock keeps other processes from building the same key again.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "warm/template.h"

namespace nfc::warm {

class BuildQueue {
 public:
  // Called on the builder thread when a build ends (the template, or why it could not be built).
  using DoneFn = std::function<void(const std::string& key, const Result<Template>& result)>;

  explicit BuildQueue(DoneFn done = {});
  // Lets the build under way finish (its VM must not be left half-saved) and drops the queued ones.
  ~BuildQueue();
  BuildQueue(const BuildQueue&) = delete;
  BuildQueue& operator=(const BuildQueue&) = delete;

  // Queues the build of `inputs` (whose key is `key`) in `store`; false when that key is already queued or
  // being built.
  bool Add(const std::string& key, TemplateStore store, TemplateInputs inputs, BuildOptions options);
  // Blocks until nothing is queued or being built.
  void WaitIdle();
  // Builds queued or under way, and builds finished since the queue was made.
  size_t pending() const;
  size_t finished() const;

 private:
  struct Job {
    std::string key;
    TemplateStore store;
    TemplateInputs inputs;
    BuildOptions options;
  };
  void Loop();

  DoneFn done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::set<std::string> keys_;  // queued or being built
  size_t finished_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // started by the first Add
};

}  // namespace nfc::warm
