#include "nomados_vm.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fstream>
#include <sstream>

namespace nomados_test {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::pair<int, std::string> RunCommand(const std::vector<std::string>& argv,
                                       const std::vector<std::string>& env) {
  std::string out_path = kWork + "/cmd.out";
  nfc::UniqueFd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  nfc::SpawnOptions o;
  o.argv = argv;
  if (!env.empty()) {
    std::vector<std::string> e;
    for (char** p = environ; *p; p++) e.push_back(*p);
    e.insert(e.end(), env.begin(), env.end());
    o.env = e;
  }
  o.stdout_fd = o.stderr_fd = out.get();
  auto child = nfc::Spawn(o);
  if (!child.ok()) return {-1, child.error().message()};
  auto st = nfc::WaitForExit(child->pid);
  int status = st.ok() ? *st : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), Slurp(out_path)};
}

std::optional<std::string> HttpGet(int port, const std::string& target) {
  nfc::UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return std::nullopt;
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: nomados\r\nConnection: close\r\n\r\n";
  if (write(s.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return std::nullopt;
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(s.get(), buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  if (resp.rfind("HTTP/1.1 200", 0) != 0) return std::nullopt;
  size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

std::string Overlay(const std::string& base, const std::string& base_format, const std::string& name) {
  std::string path = kWork + "/" + name + ".qcow2";
  fs::remove(path);
  auto [rc, out] =
      RunCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", base, path});
  EXPECT_EQ(rc, 0) << out;
  return path;
}

std::vector<GptPartition> ReadGpt(const std::string& raw) {
  std::vector<GptPartition> out;
  std::ifstream f(raw, std::ios::binary);
  char header[92];
  f.seekg(512);
  f.read(header, sizeof header);
  if (!f || std::string(header, 8) != "EFI PART") {
    ADD_FAILURE() << raw << ": no GPT header";
    return out;
  }
  auto u64 = [](const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  auto u32 = [](const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  };
  uint64_t entries_lba = u64(header + 72);
  uint32_t count = u32(header + 80), size = u32(header + 84);
  std::vector<char> e(size);
  for (uint32_t i = 0; i < count; i++) {
    f.seekg(static_cast<std::streamoff>(entries_lba * 512 + uint64_t{i} * size));
    f.read(e.data(), size);
    if (!f || u64(e.data() + 32) == 0) continue;
    GptPartition p;
    p.first_lba = u64(e.data() + 32);
    p.last_lba = u64(e.data() + 40);
    p.attributes = u64(e.data() + 48);
    for (int c = 0; c < 36 && e[56 + 2 * c]; c++) p.name.push_back(e[56 + 2 * c]);  // UTF-16LE, ASCII names
    out.push_back(p);
  }
  return out;
}

std::string ExtractDataPartition(const std::string& qcow2) {
  std::string raw = kWork + "/extract.raw", part = kWork + "/data-part.img";
  auto [rc, out] = RunCommand({"qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw});
  EXPECT_EQ(rc, 0) << out;
  uint64_t start = 0, count = 0;
  for (const auto& p : ReadGpt(raw)) {
    if (p.name == "nomados-data") {
      start = p.first_lba;
      count = p.last_lba - p.first_lba + 1;
    }
  }
  EXPECT_GT(start, 0u) << "no nomados-data partition";
  auto [rc3, out3] = RunCommand({"dd", "if=" + raw, "of=" + part, "bs=512", "skip=" + std::to_string(start),
                                 "count=" + std::to_string(count), "conv=sparse", "status=none"});
  EXPECT_EQ(rc3, 0) << out3;
  fs::remove(raw);
  return part;
}

void NomadOsBoot::SetUpTestSuite() {
  fs::create_directories(kWork);
  // NOMADOS_REUSE_IMAGE=1: iterate on the boot tests without rebuilding (never set in CI).
  if (fs::exists(kImageDir + "/nomados.raw") && getenv("NOMADOS_REUSE_IMAGE")) {
    build_ok_ = true;
    return;
  }
  auto t0 = Clock::now();
  auto [rc, out] =
      RunCommand({NOMADOS_BUILDER, "build", "--init", NOMADOS_INIT, "--nomad", NOMADOS_TEST_AGENT,
                  "--agent-config", NOMADOS_AGENT_CONFIG, "--kernel-package", "linux-image-cloud-amd64",
                  "--out", kImageDir, "--data-size", "256M", "--cmdline", kImageCmdline},
                 {"NOMADOS_CACHE=" + kWork + "/cache"});
  build_output_ = out;
  build_ok_ = rc == 0;
  std::printf("[ figure ] nomados build: %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
  std::printf("%s", out.c_str());
}

}  // namespace nomados_test
