// main() of every GoogleTest binary built with nfc_test(): GoogleTest's own, except that skips are reported.
#include <gtest/gtest.h>

#include "run_all_tests.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return nfc::test_support::RunAllTestsReportingSkips();
}
