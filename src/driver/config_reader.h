// ConfigReader: typed, strict access to one decoded configuration object (the task's `config {}` or the
// agent's plugin `config {}`), producing errors that name the option and the offending value:
//   task config option "vcpu_count" = 1.5: expected a whole number from 1 to 32
// Every option a caller reads is marked as consumed; RejectUnknown() refuses anything else, so a schema
// change that forgets the decoder (or a peer sending keys we do not know) is an error, not silently ignored
// input.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "driver/cty_value.h"

namespace nfc::driver {

class ConfigReader {
 public:
  // `what` names the block in messages, e.g. "task config". `root` must outlive the reader.
  ConfigReader(const CtyValue& root, std::string what) : root_(root), what_(std::move(what)) {}

  // The root must be a map (cty object); everything else is an error.
  Status CheckObject() const;

  // Each returns nullopt if the option is absent or null. Types follow cty: numbers may be ints, floats or
  // decimal strings; strings must be strings (HCL already converted numbers/bools written for string
  // options).
  Result<std::optional<std::string>> String(std::string_view key);
  Result<std::optional<int64_t>> Integer(std::string_view key, int64_t min, int64_t max);
  Result<std::optional<bool>> Bool(std::string_view key);
  Result<std::optional<std::vector<std::string>>> StringList(std::string_view key);
  // Raw access for options of type `any` or nested objects; marks the key consumed.
  const CtyValue* Get(std::string_view key);
  // A nested block (`auth { ... }`, `gc { ... }`): its object, or nullptr when absent. A block arrives as an
  // object, or through JSON block syntax as a one-element list of one; anything else is an error naming it.
  Result<const CtyValue*> Block(std::string_view key);

  Status RejectUnknown() const;

  // "task config option \"key\" = <value>: <problem>"
  Error Invalid(std::string_view key, const CtyValue& value, std::string_view problem) const;
  Error Invalid(std::string_view key, std::string_view problem) const;
  const std::string& what() const { return what_; }

 private:
  const CtyValue& root_;
  std::string what_;
  std::set<std::string, std::less<>> consumed_;
};

// cty number (int, float or decimal text) to int64, if it is a whole number in range.
Result<int64_t> CtyNumberToInt64(const CtyValue& value);
// cty number to double (decimal text is parsed; precision beyond double is lost).
Result<double> CtyNumberToDouble(const CtyValue& value);

}  // namespace nfc::driver
