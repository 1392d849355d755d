// The busybox demo image every lifecycle test runs: Debian's static busybox with the applets the tests use,
// written as an OCI layout and pushed to a local registry. Shared by the C++ lifecycle tests and the Go
// harness's environment runner (harness_env.cc) so both run the very same image.
#pragma once

#include <string>

#include "base/error.h"
#include "registry_fixture.h"

namespace nfc::lifecycle_test {

// Writes the image's OCI layout under work_dir/layout and pushes it to the registry as demo:1. Returns the
// reference to pull ("<host>/demo:1").
Result<std::string> PushDemoImage(image::testing::LocalRegistry* registry, const std::string& work_dir);

}  // namespace nfc::lifecycle_test
