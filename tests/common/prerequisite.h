// When a missing test prerequisite (a tool, root, a built artifact) is a failure rather than a skip. Needs no
// GoogleTest, so test drivers outside GoogleTest (tests/lifecycle/harness_env.cc) apply the same rule.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace nfc::test_support {

// CTest's code for "skipped" (SKIP_RETURN_CODE on every test entry of ours).
constexpr int kSkippedExitCode = 77;

// Why a missing prerequisite must fail here, or "" when skipping is allowed. CI (CI=true) must run every
// tier; root can install every prerequisite and runs the root-only tiers, so a skip there hides a broken
// setup.
inline std::string MissingPrerequisiteFailsBecause() {
  const char* ci = std::getenv("CI");
  if (ci && (std::string(ci) == "true" || std::string(ci) == "1")) return "CI=" + std::string(ci);
  if (::geteuid() == 0) return "running as root";
  return "";
}

}  // namespace nfc::test_support
