// RUN_ALL_TESTS for our mains: a binary whose tests passed except for skips exits 77 (CTest: "Skipped"),
// so a binary registered as one CTest entry never reports a skip as a pass. Failures still exit 1, even
// when other tests skipped.
#pragma once

namespace nfc::test_support {

int RunAllTestsReportingSkips();

}  // namespace nfc::test_support
