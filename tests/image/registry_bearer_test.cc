// Bearer-token auth end to end: Debian's docker-registry with `auth: token` (TLS on loopback) trusts a
// signing certificate this test creates; a token server in the test (plain HTTP on loopback) answers the
// realm with RS256 JWTs (signing cert in the x5c header) granting the requested scope. The registry verifies
// the tokens itself, so a pull only succeeds if the client ran the whole challenge -> token -> retry flow
// correctly.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/process.h"
#include "base/unique_fd.h"
#include "ext4_snapshot.h"
#include "free_port.h"
#include "image/cache_fs.h"
#include "image/store.h"
#include "registry_fixture.h"
#include "test_layers.h"

namespace nfc::image {
namespace {

using json = nlohmann::json;
constexpr char kService[] = "nfc-test-registry";
constexpr char kIssuer[] = "nfc-test-issuer";

std::string Base64(const std::string& in, bool url) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  if (!url) return out;
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// Signs JWTs with an RSA key whose self-signed certificate the registry lists as its rootcertbundle.
class TokenSigner {
 public:
  static std::unique_ptr<TokenSigner> Load(const std::string& key_pem, const std::string& cert_pem) {
    auto s = std::make_unique<TokenSigner>();
    FILE* f = std::fopen(key_pem.c_str(), "re");
    if (!f) return nullptr;
    s->key_ = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    f = std::fopen(cert_pem.c_str(), "re");
    if (!f) return nullptr;
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (!s->key_ || !cert) return nullptr;
    unsigned char* der = nullptr;
    int len = i2d_X509(cert, &der);
    s->cert_der_.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    X509_free(cert);
    return s;
  }
  ~TokenSigner() { EVP_PKEY_free(key_); }

  std::string Sign(const json& claims) const {
    json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {Base64(cert_der_, false)}}};
    std::string input = Base64(header.dump(), true) + "." + Base64(claims.dump(), true);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t sig_len = 0;
    std::string sig;
    if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_) == 1 &&
        EVP_DigestSign(ctx, nullptr, &sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1) {
      sig.resize(sig_len);
      if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
        sig.clear();
      }
      sig.resize(sig_len);
    }
    EVP_MD_CTX_free(ctx);
    return input + "." + Base64(sig, true);
  }

 private:
  EVP_PKEY* key_ = nullptr;
  std::string cert_der_;
};

// The realm: GET /token?service=..&scope=.. -> {"token": JWT}. Records every request it saw.
class TokenServer {
 public:
  struct Seen {
    std::map<std::string, std::string> query;  // decoded
    std::string authorization;
  };
  enum class Mode { kGrantScope, kGrantNothing, kUntrustedSigner };

  TokenServer(const TokenSigner* signer, std::string user, std::string password)
      : signer_(signer), user_(std::move(user)), password_(std::move(password)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0) {
      return;
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TokenServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }
  void set_mode(Mode m) { mode_ = m; }
  void set_untrusted_signer(const TokenSigner* s) { untrusted_ = s; }
  std::vector<Seen> TakeSeen() {
    std::lock_guard<std::mutex> l(mu_);
    return std::exchange(seen_, {});
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stop_) return;
        continue;
      }
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      Handle(c);
      ::close(c);
    }
  }

  void Handle(int fd) {
    std::string req;
    char buf[8192];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    Seen seen;
    size_t sp1 = req.find(' '), sp2 = req.find(' ', sp1 + 1);
    std::string target = req.substr(sp1 + 1, sp2 - sp1 - 1);
    if (size_t q = target.find('?'); q != std::string::npos) {
      std::string qs = target.substr(q + 1);
      size_t i = 0;
      while (i <= qs.size()) {
        size_t amp = qs.find('&', i);
        std::string kv = qs.substr(i, amp == std::string::npos ? std::string::npos : amp - i);
        size_t eq = kv.find('=');
        if (eq != std::string::npos)
          seen.query[PercentDecode(kv.substr(0, eq))] = PercentDecode(kv.substr(eq + 1));
        if (amp == std::string::npos) break;
        i = amp + 1;
      }
    }
    for (size_t pos = req.find("\r\n"); pos != std::string::npos && pos < req.size();) {
      size_t end = req.find("\r\n", pos + 2);
      if (end == std::string::npos) break;
      std::string line = req.substr(pos + 2, end - pos - 2);
      if (line.size() > 14 && strncasecmp(line.c_str(), "authorization:", 14) == 0) {
        seen.authorization = line.substr(14);
        while (!seen.authorization.empty() && seen.authorization.front() == ' ')
          seen.authorization.erase(0, 1);
      }
      pos = end;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      seen_.push_back(seen);
    }
    std::string status = "200 OK", body;
    bool anonymous = seen.authorization.empty();
    bool creds_ok = seen.authorization == "Basic " + Base64(user_ + ":" + password_, false);
    if (target.rfind("/token", 0) != 0) {
      status = "404 Not Found";
    } else if (!anonymous && !creds_ok) {
      status = "401 Unauthorized";
      body = R"({"details":"invalid username or password"})";
    } else {
      json access = json::array();
      const std::string scope = seen.query["scope"];  // repository:<name>:<actions>
      size_t c1 = scope.find(':'), c2 = scope.rfind(':');
      if (mode_ != Mode::kGrantNothing && c1 != std::string::npos && c2 > c1) {
        access.push_back({{"type", scope.substr(0, c1)},
                          {"name", scope.substr(c1 + 1, c2 - c1 - 1)},
                          {"actions", {"pull"}}});
      }
      auto now = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
      json claims = {{"iss", kIssuer},
                     {"sub", anonymous ? "" : user_},
                     {"aud", seen.query["service"]},
                     {"exp", now + 300},
                     {"nbf", now - 10},
                     {"iat", now},
                     {"jti", std::to_string(now) + "-" + std::to_string(++issued_)},
                     {"access", access}};
      body = json{
          {"token", (mode_ == Mode::kUntrustedSigner ? untrusted_ : signer_)->Sign(claims)},
          {"expires_in",
           300}}.dump();
    }
    std::string resp = "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    (void)::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
  }

  const TokenSigner* signer_;
  const TokenSigner* untrusted_ = nullptr;
  std::string user_, password_;
  int listen_fd_ = -1, port_ = 0, issued_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{Mode::kGrantScope};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

class RegistryBearerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/nfc-bearer-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // A basic-auth registry to push the image into; the token registry then serves the same storage.
    auto seed = testing::LocalRegistry::Start(dir_ + "/seed", "pusher", "push-pw");
    ASSERT_TRUE(seed.ok()) << seed.error().message();
    seed_ = seed->release();
    testing::TestImage tiny;
    tiny.layers.push_back({{{'f', "hello", 0755, "HELLO from behind a token"}}, "gzip"});
    ASSERT_TRUE(testing::WriteOciLayout(dir_ + "/layout", "tiny", {tiny}).ok());
    auto pushed = seed_->Push(dir_ + "/layout", "tiny", "test/tiny:1");
    ASSERT_TRUE(pushed.ok()) << pushed.error().message();

    ASSERT_TRUE(testing::RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                     "-subj", "/CN=nfc test token signer", "-keyout", dir_ + "/signer.key",
                                     "-out", dir_ + "/signer.crt"})
                    .ok());
    signer_ = TokenSigner::Load(dir_ + "/signer.key", dir_ + "/signer.crt").release();
    ASSERT_NE(signer_, nullptr);
    // Same subject, different key: not in the registry's rootcertbundle.
    ASSERT_TRUE(testing::RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                     "-subj", "/CN=nfc test token signer", "-keyout", dir_ + "/rogue.key",
                                     "-out", dir_ + "/rogue.crt"})
                    .ok());
    rogue_ = TokenSigner::Load(dir_ + "/rogue.key", dir_ + "/rogue.crt").release();
    ASSERT_NE(rogue_, nullptr);
    tokens_ = new TokenServer(signer_, "alice", "s3cret");
    tokens_->set_untrusted_signer(rogue_);
    ASSERT_GT(tokens_->port(), 0);

    port_ = nfc::test_support::FreeLoopbackPort();
    const std::string certs = dir_ + "/seed/certs";
    testing::WriteFileOrDie(
        dir_ + "/token-registry.yml",
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " +
            seed_->storage() + "\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) +
            "\n  tls:\n    certificate: " + certs + "/server.crt\n    key: " + certs +
            "/server.key\nauth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(tokens_->port()) +
            "/token\n    service: " + kService + "\n    issuer: " + kIssuer +
            "\n    rootcertbundle: " + dir_ + "/signer.crt\n");
    UniqueFd log(
        ::open((dir_ + "/token-registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    SpawnOptions so;
    so.argv = {"docker-registry", "serve", dir_ + "/token-registry.yml"};
    so.stdout_fd = log.get();
    so.stderr_fd = log.get();
    so.parent_death_signal = SIGKILL;
    auto child = Spawn(so);
    ASSERT_TRUE(child.ok()) << child.error().message();
    pid_ = child->pid;
    for (int i = 0; i < 100; ++i) {
      if (testing::RunCommand({"curl", "-s", "-o", "/dev/null", "--cacert", seed_->ca_file(),
                               "https://127.0.0.1:" + std::to_string(port_) + "/v2/"})
              .ok()) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "token registry did not start:\n" << testing::ReadFileOrDie(dir_ + "/token-registry.log");
  }

  static void TearDownTestSuite() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      (void)WaitForExit(pid_);
      pid_ = -1;
    }
    delete tokens_;
    tokens_ = nullptr;
    delete signer_;
    signer_ = nullptr;
    delete rogue_;
    rogue_ = nullptr;
    delete seed_;
    seed_ = nullptr;
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  void SetUp() override {
    ASSERT_GT(pid_, 0);
    cache_ = dir_ + "/cache-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    tokens_->set_mode(TokenServer::Mode::kGrantScope);
    tokens_->TakeSeen();
  }

  PullOptions Options(std::optional<RegistryAuth> auth) {
    PullOptions o;
    o.auth = std::move(auth);
    o.ca_file = seed_->ca_file();
    o.docker_config = dir_ + "/no-docker-config.json";
    o.timeout = std::chrono::seconds(60);
    return o;
  }
  std::string Ref() const { return "127.0.0.1:" + std::to_string(port_) + "/test/tiny:1"; }

  void ExpectNoCacheEntry() {
    auto images = ListDir(cache_ + "/images");
    ASSERT_TRUE(images.ok());
    EXPECT_TRUE(images->empty());
    auto tmp = ListDir(cache_ + "/tmp");
    ASSERT_TRUE(tmp.ok());
    EXPECT_TRUE(tmp->empty());
  }

  static std::string dir_;
  static testing::LocalRegistry* seed_;
  static TokenSigner* signer_;
  static TokenSigner* rogue_;
  static TokenServer* tokens_;
  static int port_;
  static pid_t pid_;
  std::string cache_;
};

std::string RegistryBearerTest::dir_;
testing::LocalRegistry* RegistryBearerTest::seed_ = nullptr;
TokenSigner* RegistryBearerTest::signer_ = nullptr;
TokenSigner* RegistryBearerTest::rogue_ = nullptr;
TokenServer* RegistryBearerTest::tokens_ = nullptr;
int RegistryBearerTest::port_ = 0;
pid_t RegistryBearerTest::pid_ = -1;

TEST_F(RegistryBearerTest, RegistryRejectsRequestsWithoutAToken) {
  std::string out;
  ASSERT_TRUE(testing::RunCommand(
                  {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", seed_->ca_file(),
                   "https://127.0.0.1:" + std::to_string(port_) + "/v2/test/tiny/manifests/1"},
                  &out)
                  .ok());
  EXPECT_EQ(out, "401");
}

TEST_F(RegistryBearerTest, PullsWithATokenFetchedWithCredentials) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(Ref(), Options(RegistryAuth{"alice", "s3cret", ""}));
  ASSERT_TRUE(h.ok()) << h.error().message() << "\n" << testing::ReadFileOrDie(dir_ + "/token-registry.log");
  auto snap = testing::SnapshotExt4(h->rootfs_path);
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(snap->count("/hello"));
  EXPECT_NE(snap->at("/hello").find("sha=" + testing::Sha256Hex("HELLO from behind a token").substr(0, 12)),
            std::string::npos);
  auto seen = tokens_->TakeSeen();
  ASSERT_FALSE(seen.empty());
  for (auto& s : seen) {
    EXPECT_EQ(s.query["scope"], "repository:test/tiny:pull");
    EXPECT_EQ(s.query["service"], kService);
    EXPECT_EQ(s.authorization, "Basic " + Base64("alice:s3cret", false));
  }
}

TEST_F(RegistryBearerTest, PullsAnonymouslyWithoutSendingCredentials) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(Ref(), Options(std::nullopt));
  ASSERT_TRUE(h.ok()) << h.error().message();
  auto seen = tokens_->TakeSeen();
  ASSERT_FALSE(seen.empty());
  for (auto& s : seen) {
    EXPECT_EQ(s.query["scope"], "repository:test/tiny:pull");
    EXPECT_EQ(s.authorization, "");
  }
}

TEST_F(RegistryBearerTest, WrongCredentialsGiveAClearErrorAndNoCacheEntry) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(Ref(), Options(RegistryAuth{"alice", "wrong", ""}));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code(), ErrorCode::kUnauthenticated) << h.error().message();
  EXPECT_NE(h.error().message().find("token server"), std::string::npos) << h.error().message();
  EXPECT_NE(h.error().message().find("\"alice\""), std::string::npos) << h.error().message();
  EXPECT_NE(h.error().message().find("401"), std::string::npos) << h.error().message();
  auto seen = tokens_->TakeSeen();
  ASSERT_EQ(seen.size(), 1u);  // refused credentials are not retried
  EXPECT_EQ(seen[0].authorization, "Basic " + Base64("alice:wrong", false));
  ExpectNoCacheEntry();
}

// auth_soft_fail (the docker driver's option): refused credentials are dropped and the pull goes on
// anonymously; so are credentials that cannot even be read (a malformed Docker config).
TEST_F(RegistryBearerTest, AuthSoftFailPullsAnonymouslyAfterRefusedCredentials) {
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  PullOptions o = Options(RegistryAuth{"alice", "wrong", ""});
  o.auth_soft_fail = true;
  auto h = (*store)->Resolve(Ref(), o);
  ASSERT_TRUE(h.ok()) << h.error().message();
  auto seen = tokens_->TakeSeen();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen[0].authorization, "Basic " + Base64("alice:wrong", false));
  for (size_t i = 1; i < seen.size(); i++) EXPECT_EQ(seen[i].authorization, "") << "request " << i;
}

TEST_F(RegistryBearerTest, AuthSoftFailIgnoresAnUnreadableDockerConfig) {
  std::string broken = dir_ + "/broken-docker-config.json";
  testing::WriteFileOrDie(broken, "{\"auths\": [not json");
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  PullOptions o = Options(std::nullopt);
  o.docker_config = broken;
  auto strict = (*store)->Resolve(Ref(), o);
  ASSERT_FALSE(strict.ok()) << "without auth_soft_fail a broken Docker config fails the pull";
  ExpectNoCacheEntry();
  o.auth_soft_fail = true;
  auto h = (*store)->Resolve(Ref(), o);
  ASSERT_TRUE(h.ok()) << h.error().message();
}

TEST_F(RegistryBearerTest, ATokenWithoutTheScopeIsReportedAsRefused) {
  tokens_->set_mode(TokenServer::Mode::kGrantNothing);
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(Ref(), Options(RegistryAuth{"alice", "s3cret", ""}));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code(), ErrorCode::kUnauthenticated) << h.error().message();
  EXPECT_NE(h.error().message().find("refused"), std::string::npos) << h.error().message();
  EXPECT_EQ(tokens_->TakeSeen().size(), 1u);
  ExpectNoCacheEntry();
}

// The registry, not the client, decides: a token with the right scope from a signer it does not trust is
// refused (so the successful pulls above prove the registry verified our signature).
TEST_F(RegistryBearerTest, ATokenFromAnUntrustedSignerIsRefused) {
  tokens_->set_mode(TokenServer::Mode::kUntrustedSigner);
  auto store = Store::Open({cache_});
  ASSERT_TRUE(store.ok());
  auto h = (*store)->Resolve(Ref(), Options(RegistryAuth{"alice", "s3cret", ""}));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code(), ErrorCode::kUnauthenticated) << h.error().message();
  EXPECT_NE(h.error().message().find("refused"), std::string::npos) << h.error().message();
  ExpectNoCacheEntry();
}

}  // namespace
}  // namespace nfc::image
