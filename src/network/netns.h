// Running code inside a network namespace named by a path (Nomad's /var/run/netns/<alloc id> bind mount, or
// /proc/<pid>/ns/net).
//
// Linux keeps the network namespace per thread, so the work runs on a short-lived thread that joins the
// namespace and exits: the caller's threads (gRPC workers) never change namespace, and nothing has to be
// undone.
#pragma once

#include <functional>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::network {

// Opens `path` and checks it is a network namespace (not just any file); the error names the path.
Result<UniqueFd> OpenNetns(const std::string& path);

// Runs `work` on a thread that has joined the namespace at `path`, and returns its status.
Status RunInNetns(const std::string& path, const std::function<Status()>& work);

// Runs `work` on a thread in a new, empty network namespace of its own (only a loopback, down), and returns
// its status. The namespace goes when the thread and the processes it started are gone, and with it every
// interface made in it.
Status RunInNewNetns(const std::function<Status()>& work);

}  // namespace nfc::network
