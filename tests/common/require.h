// NFC_REQUIRE_OR_SKIP(condition, why): the one way a test of ours skips. When `condition` is false the test
// is skipped with `why`, except in CI (CI=true) or as root, where the missing prerequisite FAILS the test
// (prerequisite.h). Use it in a test body or SetUp (it returns from the enclosing void function).
#pragma once

#include <gtest/gtest.h>

#include "prerequisite.h"

#define NFC_REQUIRE_OR_SKIP(condition, why)                                                         \
  do {                                                                                              \
    if (!(condition)) {                                                                             \
      const std::string nfc_fails_because = ::nfc::test_support::MissingPrerequisiteFailsBecause(); \
      if (!nfc_fails_because.empty())                                                               \
        GTEST_FAIL() << "missing prerequisite: " << (why)                                           \
                     << " (a failure, not a skip: " << nfc_fails_because << ")";                    \
      GTEST_SKIP() << "missing prerequisite: " << (why);                                            \
    }                                                                                               \
  } while (0)
