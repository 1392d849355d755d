#include "init/host/boot_once.h"

#include <algorithm>

namespace nfc::init::host {
namespace {

constexpr uint32_t kAdvMagic1 = 0x5a2d2fa5;  // first word of a copy
constexpr uint32_t kAdvMagic2 = 0xa3041767;  // what the checksum makes the records' words add up to
constexpr uint32_t kAdvMagic3 = 0xdd28bf64;  // last word of a copy
constexpr size_t kAdvData = kAdvSectorSize - 12;
constexpr std::string_view kGrubenvHeader = "# GRUB Environment Block\n";

uint32_t Le32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; i++) v |= static_cast<uint32_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}

void PutLe32(std::string& s, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; i++) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t WordSum(std::string_view data) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 4 <= data.size(); i += 4) sum += Le32(data, i);
  return sum;
}

bool AdvCopyIntact(std::string_view copy) {
  return Le32(copy, 0) == kAdvMagic1 && Le32(copy, kAdvSectorSize - 4) == kAdvMagic3 &&
         Le32(copy, 4) + WordSum(copy.substr(8, kAdvData)) == kAdvMagic2;
}

Result<std::vector<AdvRecord>> AdvRecords(std::string_view data) {
  std::vector<AdvRecord> records;
  size_t i = 0;
  while (i < data.size() && data[i] != 0) {
    if (i + 2 > data.size())
      return Error::DataLoss("syslinux ADV: record at byte " + std::to_string(i) + " cut");
    auto tag = static_cast<uint8_t>(data[i]);
    size_t len = static_cast<uint8_t>(data[i + 1]);
    if (i + 2 + len > data.size())
      return Error::DataLoss("syslinux ADV: record " + std::to_string(tag) + " runs past the end");
    records.push_back({tag, std::string(data.substr(i + 2, len))});
    i += 2 + len;
  }
  return records;
}

}  // namespace

Result<std::vector<AdvRecord>> DecodeAdv(std::string_view two_sectors) {
  if (two_sectors.size() != kAdvSize)
    return Error::InvalidArgument("syslinux ADV: " + std::to_string(two_sectors.size()) + " bytes, want " +
                                  std::to_string(kAdvSize));
  for (size_t copy = 0; copy < 2; copy++) {
    auto sector = two_sectors.substr(copy * kAdvSectorSize, kAdvSectorSize);
    if (AdvCopyIntact(sector)) return AdvRecords(sector.substr(8, kAdvData));
  }
  return Error::DataLoss("syslinux ADV: neither copy has valid magics and checksum");
}

Result<std::string> EncodeAdv(const std::vector<AdvRecord>& records) {
  std::string data;
  for (const auto& r : records) {
    if (r.tag == 0 || r.value.size() > 255)
      return Error::InvalidArgument("syslinux ADV record " + std::to_string(r.tag) +
                                    ": tag 0 or value over 255 bytes");
    data += static_cast<char>(r.tag);
    data += static_cast<char>(r.value.size());
    data += r.value;
  }
  if (data.size() > kAdvData)
    return Error::InvalidArgument("syslinux ADV: records take " + std::to_string(data.size()) + " bytes, " +
                                  std::to_string(kAdvData) + " fit");
  data.resize(kAdvData, '\0');
  std::string sector(kAdvSectorSize, '\0');
  PutLe32(sector, 0, kAdvMagic1);
  PutLe32(sector, 4, kAdvMagic2 - WordSum(data));
  sector.replace(8, kAdvData, data);
  PutLe32(sector, kAdvSectorSize - 4, kAdvMagic3);
  return sector + sector;
}

std::vector<AdvRecord> WithAdvBootOnce(std::vector<AdvRecord> records,
                                       std::optional<std::string_view> label) {
  std::erase_if(records, [](const AdvRecord& r) { return r.tag == kAdvBootOnce; });
  if (label) records.insert(records.begin(), {kAdvBootOnce, std::string(*label)});
  return records;
}

std::optional<std::string> AdvBootOnce(const std::vector<AdvRecord>& records) {
  for (const auto& r : records) {
    if (r.tag == kAdvBootOnce && !r.value.empty()) return r.value;
  }
  return std::nullopt;
}

Result<std::string> EfiStringVariable(std::string_view value) {
  std::string out(4, '\0');
  PutLe32(out, 0, kEfiVariableNonVolatile | kEfiVariableBootServiceAccess | kEfiVariableRuntimeAccess);
  for (char c : value) {
    if (static_cast<unsigned char>(c) >= 0x80 || c == 0)
      return Error::InvalidArgument("EFI variable value '" + std::string(value) +
                                    "': want ASCII without NUL");
    out += c;
    out += '\0';
  }
  out.append(2, '\0');
  return out;
}

Result<std::string> ParseEfiStringVariable(std::string_view file) {
  if (file.size() < 6 || file.size() % 2 != 0)
    return Error::InvalidArgument("EFI variable: " + std::to_string(file.size()) +
                                  " bytes, want 4 of attributes and a UTF-16 string");
  std::string out;
  for (size_t i = 4; i + 1 < file.size(); i += 2) {
    auto lo = static_cast<unsigned char>(file[i]), hi = static_cast<unsigned char>(file[i + 1]);
    if (lo == 0 && hi == 0) return out;
    if (hi != 0 || lo >= 0x80)
      return Error::InvalidArgument("EFI variable: non-ASCII character at byte " + std::to_string(i));
    out += static_cast<char>(lo);
  }
  return Error::InvalidArgument("EFI variable: string without its terminating NUL");
}

std::string EmptyGrubenv() {
  std::string block(kGrubenvHeader);
  block.resize(kGrubenvSize, '#');
  return block;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseGrubenv(std::string_view block) {
  if (block.size() != kGrubenvSize)
    return Error::InvalidArgument("grubenv: " + std::to_string(block.size()) + " bytes, want 1024");
  if (block.substr(0, kGrubenvHeader.size()) != kGrubenvHeader)
    return Error::InvalidArgument("grubenv: no '# GRUB Environment Block' header");
  std::vector<std::pair<std::string, std::string>> vars;
  std::string_view rest = block.substr(kGrubenvHeader.size());
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;  // the padding (or a comment)
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return Error::InvalidArgument("grubenv: line '" + std::string(line) + "' is not name=value");
    vars.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return vars;
}

Result<std::string> WithGrubenvVariable(std::string_view block, std::string_view name,
                                        std::optional<std::string_view> value) {
  auto bad = [](std::string_view s) { return s.find_first_of("\n\\") != std::string_view::npos; };
  if (name.empty() || name.find('=') != std::string_view::npos || bad(name) || (value && bad(*value)))
    return Error::InvalidArgument("grubenv variable '" + std::string(name) +
                                  "': want no '=', newline or '\\'");
  auto vars = ParseGrubenv(block);
  if (!vars.ok()) return vars.error();
  std::erase_if(*vars, [&](const auto& v) { return v.first == name; });
  if (value) vars->emplace_back(std::string(name), std::string(*value));
  std::string out(kGrubenvHeader);
  for (const auto& [n, v] : *vars) out += n + "=" + v + "\n";
  if (out.size() > kGrubenvSize)
    return Error::InvalidArgument("grubenv: " + std::to_string(out.size()) + " bytes of variables, 1024 fit");
  out.resize(kGrubenvSize, '#');
  return out;
}

}  // namespace nfc::init::host
