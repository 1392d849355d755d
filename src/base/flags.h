// Command-line flags of the CLI commands (run, image, ps, logs, doctor, and the standalone nfc-image-tool):
// one table per command, from which both the parser and the --help text come, so the help can never leave a
// flag out and every error names the flag and the value the person typed.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace nfc::flags {

// One flag: "--name VALUE" or "--name=VALUE" when `value` is set, a switch ("--name") otherwise.
struct Flag {
  std::string_view name;        // "--memory"
  std::string_view short_name;  // "-m", or empty
  std::string_view value;       // what the value is, for the help: "MiB", "DIR"; empty for a switch
  std::string_view help;        // what the flag does, the default, whether it repeats
  // Takes the value (empty for a switch). An error says what was expected ("expected a whole number ...");
  // the parser prefixes the flag and the value.
  std::function<Status(const std::string& value)> apply;
};

enum class Outcome { kParsed, kHelp };

// Parses `args` with `table`. "--help" and "-h" (as flags, not as values) end parsing with kHelp. Arguments
// that are not flags go to `positional` in order. When `after_dashes` is set, "--" ends parsing and the rest
// goes there; otherwise "--" is an error. Errors (InvalidArgument) name the flag and the value:
//   unknown flag "--foo" | --memory needs a value | --memory "-5": expected ... | --json takes no value
Result<Outcome> Parse(std::span<const Flag> table, std::span<const std::string> args,
                      std::vector<std::string>* positional, std::vector<std::string>* after_dashes = nullptr);

// The help lines of `table`, one flag per entry ("  -m, --memory MiB   text"), wrapped to 110 columns.
std::string Describe(std::span<const Flag> table);

// `text` wrapped to 110 columns, ending in a newline: a paragraph of a help text.
std::string Paragraph(std::string_view text);

// The names of `table`'s flags, long and short ("--memory", "-m"): for tests of the help texts.
std::vector<std::string> Names(std::span<const Flag> table);

// The setter of a flag whose value must not be empty ("" would silently mean the default): the error is
// "expected <what>, not an empty string".
std::function<Status(const std::string& value)> NonEmpty(std::string* out, std::string_view what);

// A decimal whole number within [min, max]: digits only (no sign, suffix or spaces). The error says only
// "not a whole number" or "out of range"; the caller words what was expected.
Result<int64_t> ParseWholeNumber(std::string_view text, int64_t min, int64_t max);

// Prints "<context>: <message>" and "see: <help_command> --help" on stderr; returns 2, the usage exit code.
int UsageError(std::string_view context, std::string_view message, std::string_view help_command);

// The exit code of a bad command line.
inline constexpr int kUsageExit = 2;

}  // namespace nfc::flags
