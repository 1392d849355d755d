#include "base/flags.h"

#include <cstdio>

namespace nfc::flags {
namespace {

const Flag* Find(std::span<const Flag> table, std::string_view name) {
  for (const Flag& f : table) {
    if (f.name == name || (!f.short_name.empty() && f.short_name == name)) return &f;
  }
  return nullptr;
}

bool LooksLikeFlag(std::string_view arg) {
  return arg.size() > 1 && arg[0] == '-';
}

Status Apply(const Flag& flag, std::string_view typed, const std::string& value) {
  Status s = flag.apply(value);
  if (s.ok()) return s;
  if (flag.value.empty()) return Error::InvalidArgument(std::string(typed) + ": " + s.error().message());
  return Error::InvalidArgument(std::string(typed) + " \"" + value + "\": " + s.error().message());
}

// Appends `text` to `out`, wrapped at `width` columns, continuation lines indented by `indent`.
void Wrap(std::string_view text, size_t indent, size_t width, size_t column, std::string* out) {
  while (!text.empty()) {
    size_t space = text.find(' ');
    std::string_view word = text.substr(0, space);
    if (column > indent && column + 1 + word.size() > width) {
      out->append("\n").append(indent, ' ');
      column = indent;
    } else if (column > indent) {
      out->push_back(' ');
      column++;
    }
    out->append(word);
    column += word.size();
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
  }
}

}  // namespace

Result<Outcome> Parse(std::span<const Flag> table, std::span<const std::string> args,
                      std::vector<std::string>* positional, std::vector<std::string>* after_dashes) {
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& arg = args[i];
    if (arg == "--" && after_dashes) {
      after_dashes->assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      return Outcome::kParsed;
    }
    if (!LooksLikeFlag(arg)) {
      positional->push_back(arg);
      continue;
    }
    if (arg == "--help" || arg == "-h") return Outcome::kHelp;
    size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    const Flag* flag = Find(table, name);
    if (!flag) return Error::InvalidArgument("unknown flag \"" + name + "\"");
    if (flag->value.empty()) {
      if (eq != std::string::npos) return Error::InvalidArgument(name + " takes no value");
      NFC_RETURN_IF_ERROR(Apply(*flag, name, ""));
      continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Error::InvalidArgument(name + " needs a value (" + std::string(flag->value) + ")");
    }
    NFC_RETURN_IF_ERROR(Apply(*flag, name, value));
  }
  return Outcome::kParsed;
}

std::string Describe(std::span<const Flag> table) {
  constexpr size_t kWidth = 110;
  size_t column = 0;
  std::vector<std::string> heads;
  for (const Flag& f : table) {
    std::string head = "  ";
    if (!f.short_name.empty()) head.append(f.short_name).append(", ");
    head.append(f.name);
    if (!f.value.empty()) head.append(" ").append(f.value);
    column = std::max(column, head.size());
    heads.push_back(std::move(head));
  }
  column = std::min<size_t>(column + 2, 36);
  std::string out;
  for (size_t i = 0; i < table.size(); i++) {
    out += heads[i];
    if (heads[i].size() + 2 > column) {
      out.append("\n").append(column, ' ');
    } else {
      out.append(column - heads[i].size(), ' ');
    }
    Wrap(table[i].help, column, kWidth, column, &out);
    out += "\n";
  }
  return out;
}

std::string Paragraph(std::string_view text) {
  std::string out;
  Wrap(text, 0, 110, 0, &out);
  return out + "\n";
}

std::vector<std::string> Names(std::span<const Flag> table) {
  std::vector<std::string> names;
  for (const Flag& f : table) {
    names.emplace_back(f.name);
    if (!f.short_name.empty()) names.emplace_back(f.short_name);
  }
  return names;
}

std::function<Status(const std::string& value)> NonEmpty(std::string* out, std::string_view what) {
  return [out, what = std::string(what)](const std::string& value) -> Status {
    if (value.empty()) return Error::InvalidArgument("expected " + what + ", not an empty string");
    *out = value;
    return Ok();
  };
}

Result<int64_t> ParseWholeNumber(std::string_view text, int64_t min, int64_t max) {
  if (text.empty() || text.size() > 18) {
    return Error::InvalidArgument(text.empty() ? "not a whole number" : "out of range");
  }
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Error::InvalidArgument("not a whole number");
    n = n * 10 + (c - '0');
  }
  if (n < min || n > max) return Error::InvalidArgument("out of range");
  return n;
}

int UsageError(std::string_view context, std::string_view message, std::string_view help_command) {
  std::fprintf(stderr, "%.*s: %.*s\nsee: %.*s --help\n", static_cast<int>(context.size()), context.data(),
               static_cast<int>(message.size()), message.data(), static_cast<int>(help_command.size()),
               help_command.data());
  return kUsageExit;
}

}  // namespace nfc::flags
