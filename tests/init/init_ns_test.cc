// nomad-init's guest role in namespaces (init_ns_fixture.h): one scenario per behaviour.
#include "init_ns_fixture.h"

namespace nfc::guest {
namespace {

using namespace std::chrono_literals;

TEST_F(InitNamespaceTest, ExitCodeZero) {
  auto o = RunToEnd(BaseSpec("echo hi"));
  EXPECT_EQ(o.exit.exit_code, 0);
  EXPECT_EQ(o.exit.signal, 0);
  EXPECT_EQ(o.out, "hi\n");
  EXPECT_EQ(o.status.phase, GuestPhase::kExited);
}

TEST_F(InitNamespaceTest, ExitCodeThree) {
  auto o = RunToEnd(BaseSpec("exit 3"));
  EXPECT_EQ(o.exit.exit_code, 3);
  EXPECT_EQ(o.exit.signal, 0);
  EXPECT_FALSE(o.exit.oom_killed);
}

TEST_F(InitNamespaceTest, ExitCodeIs128PlusSignal) {
  auto o = RunToEnd(BaseSpec("kill -KILL $$"));
  EXPECT_EQ(o.exit.exit_code, 128 + SIGKILL);
  EXPECT_EQ(o.exit.signal, SIGKILL);
}

TEST_F(InitNamespaceTest, StdoutAndStderrStaySeparate) {
  auto o = RunToEnd(BaseSpec("echo out1; echo err1 >&2; echo out2; echo err2 >&2"));
  EXPECT_EQ(o.out, "out1\nout2\n");
  EXPECT_EQ(o.err, "err1\nerr2\n");
}

TEST_F(InitNamespaceTest, UserByNameWithGroupsEnvAndWorkingDir) {
  auto spec = BaseSpec("id -u; id -g; id -G; pwd; echo $FOO $BAR $HOME $HOSTNAME");
  spec.image.env = {"PATH=/bin", "FOO=image", "BAR=keep"};
  spec.process.env = {{"FOO", "task"}};
  spec.process.user = "app";
  spec.process.groups = {"video"};
  spec.process.working_dir = "/work/dir";
  spec.hostname = "box";
  auto o = RunToEnd(spec);
  EXPECT_EQ(o.exit.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "1000\n1000\n1000 29 44\n/work/dir\ntask keep /home/app box\n");
}

TEST_F(InitNamespaceTest, UserByNumberAndImageWorkingDir) {
  auto spec = BaseSpec("id -u; id -g; id -G; pwd");
  spec.image.user = "1000:44";
  spec.image.working_dir = "/home/app";
  auto o = RunToEnd(spec);
  EXPECT_EQ(o.exit.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "1000\n44\n44\n/home/app\n");
}

TEST_F(InitNamespaceTest, ImageWithoutEtcGetsIdentityFiles) {
  std::string bare = dir_.Path("bare");
  BuildRootfs(bare, false);
  auto spec = BaseSpec("cat /etc/hostname; grep -c web /etc/hosts; cat /etc/resolv.conf; id -u");
  spec.root.directory = bare;
  spec.hostname = "web";
  spec.hosts = {{"10.0.0.9", {"db"}}};
  spec.dns = DnsConfig{{"10.0.0.53"}, {"svc.local"}, {"ndots:2"}};
  spec.process.user = "4242";
  auto o = RunToEnd(spec);
  EXPECT_EQ(o.exit.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "web\n1\nnameserver 10.0.0.53\nsearch svc.local\noptions ndots:2\n4242\n");
}

TEST_F(InitNamespaceTest, OrphanedGrandchildrenAreReaped) {
  // Each subshell starts a sleep and exits at once: the sleeps are orphaned to init, exit, and must be
  // reaped.
  auto o =
      RunToEnd(BaseSpec("for i in 1 2 3 4 5 6 7 8; do (sleep 0.05 &); done; sleep 0.6; "
                        "z=0; for f in /proc/[0-9]*/stat; do read -r pid comm state rest < $f; [ \"$state\" "
                        "= Z ] && z=$((z+1)); done; "
                        "echo zombies=$z"));
  EXPECT_EQ(o.exit.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "zombies=0\n");
}

TEST_F(InitNamespaceTest, SignalsReachTheWholeProcessGroup) {
  Start(
      BaseSpec("trap 'echo parent-usr1' USR1; "
               "sh -c 'trap \"echo child-usr1; exit 0\" USR1; echo ready; while true; do sleep 0.02; done' & "
               "c=$!; wait $c; wait $c; echo done"));
  auto c = Connect();
  ASSERT_TRUE(c);
  bool sent = false;
  auto o = Collect(*c, [&](const std::string& out) {
    if (!sent && out.find("ready") != std::string::npos) {
      sent = true;
      EXPECT_TRUE(c->Signal(SIGUSR1).ok());
    }
  });
  EXPECT_TRUE(sent);
  EXPECT_NE(o.out.find("parent-usr1"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("child-usr1"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("done"), std::string::npos) << o.out;
  EXPECT_EQ(o.exit.exit_code, 0);
  AckAndWaitForShutdown(*c);
}

TEST_F(InitNamespaceTest, SigtermToInitStopsTheWorkloadGracefully) {
  Start(BaseSpec("trap 'echo stopping; exit 0' TERM; echo ready; while true; do sleep 0.02; done"));
  auto c = Connect();
  ASSERT_TRUE(c);
  bool sent = false;
  auto o = Collect(*c, [&](const std::string& out) {
    if (!sent && out.find("ready") != std::string::npos) {
      sent = true;
      ASSERT_EQ(kill(InitHostPid(), SIGTERM), 0);
    }
  });
  EXPECT_EQ(o.out, "ready\nstopping\n");
  EXPECT_EQ(o.exit.exit_code, 0);
  AckAndWaitForShutdown(*c);
}

TEST_F(InitNamespaceTest, StopEscalatesToSigkillAfterTheKillTimeout) {
  auto spec = BaseSpec("trap '' TERM; echo ready; while true; do sleep 0.02; done");
  spec.process.kill_timeout_ms = 300;
  Start(spec);
  auto c = Connect();
  ASSERT_TRUE(c);
  bool sent = false;
  auto o = Collect(*c, [&](const std::string& out) {
    if (!sent && out.find("ready") != std::string::npos) {
      sent = true;
      EXPECT_TRUE(c->Shutdown().ok());
    }
  });
  EXPECT_EQ(o.exit.exit_code, 128 + SIGKILL);
  AckAndWaitForShutdown(*c);
}

std::string Seq(int n) {
  std::string s;
  for (int i = 1; i <= n; i++) s += std::to_string(i) + "\n";
  return s;
}

TEST_F(InitNamespaceTest, TenMegabyteBurstArrivesCompleteAndInOrder) {
  const int kLines = 1400000;  // 10.1 MB of decimal lines
  auto o = RunToEnd(BaseSpec("seq 1 " + std::to_string(kLines) + "; seq 1 1000 >&2"));
  std::string expected = Seq(kLines);
  ASSERT_GT(expected.size(), 10u * 1000 * 1000);
  EXPECT_EQ(o.out.size(), expected.size());
  EXPECT_TRUE(o.out == expected) << "stdout differs from seq output";
  EXPECT_EQ(o.err, Seq(1000));
  EXPECT_EQ(o.exit.log_end.stdout_offset, expected.size());
  // Boot timing from init's own timestamps (printed, not asserted).
  if (o.status.boot.workload_execve_ns) {
    std::cout << "BOOT-TIMING init_start->root_mounted="
              << (o.status.boot.root_mounted_ns - o.status.boot.init_start_ns) / 1000
              << "us init_start->workload_execve="
              << (o.status.boot.workload_execve_ns - o.status.boot.init_start_ns) / 1000 << "us\n";
  }
}

TEST_F(InitNamespaceTest, ReconnectMidStreamDeliversEveryByteExactlyOnce) {
  const int kLines = 1000000;
  auto spec = BaseSpec("seq 1 " + std::to_string(kLines));
  spec.control.log_buffer_bytes = 1 << 20;  // the workload must block on backpressure while we are away
  Start(spec);
  std::string delivered;
  LogOffsets acked;
  {
    auto c = Connect();
    ASSERT_TRUE(c);
    // Take ~2.5 MB, acknowledging only what we "wrote out", then vanish with unacknowledged data in flight.
    std::string received;
    while (received.size() < 2500000) {
      auto chunk = c->NextLog(5s);
      ASSERT_TRUE(chunk.ok() && *chunk) << "log stream stalled";
      if ((*chunk)->stream != LogStream::kStdout) continue;
      ASSERT_EQ((*chunk)->offset, received.size());
      received += (*chunk)->data;
      if (received.size() < 2000000) {
        ASSERT_TRUE(c->AckLog(LogStream::kStdout, received.size()).ok());
        delivered = received;
      }
    }
    acked = c->acked();
    EXPECT_EQ(acked.stdout_offset, delivered.size());
    c->Close();
  }
  std::this_thread::sleep_for(200ms);
  auto c2 = Connect(acked);
  ASSERT_TRUE(c2);
  auto first = c2->NextLog(5s);
  ASSERT_TRUE(first.ok() && *first);
  EXPECT_EQ((*first)->offset, acked.stdout_offset) << "the guest resumes exactly at the acknowledged offset";
  delivered += (*first)->data;
  ASSERT_TRUE(c2->AckLog(LogStream::kStdout, acked.stdout_offset + (*first)->data.size()).ok());
  auto rest = Collect(*c2);
  delivered += rest.out;
  std::string expected = Seq(kLines);
  EXPECT_EQ(delivered.size(), expected.size());
  EXPECT_TRUE(delivered == expected) << "bytes lost or duplicated across the reconnect";
  EXPECT_EQ(rest.exit.exit_code, 0);
  AckAndWaitForShutdown(*c2);
}

TEST_F(InitNamespaceTest, ExecWithoutTtyKeepsStreamsAndExitCode) {
  Start(BaseSpec("echo ready; while true; do sleep 0.05; done"));
  auto c = Connect();
  ASSERT_TRUE(c);
  ExecOptions e;
  e.argv = {"sh", "-c", "read x; echo got:$x; echo to-stderr >&2; echo $EXTRA; exit 5"};
  e.env = {"EXTRA=yes"};
  auto s = c->Exec(e);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  ASSERT_TRUE((*s)->Write("hello\n").ok());
  ASSERT_TRUE((*s)->CloseStdin().ok());
  std::string out, err;
  for (;;) {
    auto chunk = (*s)->Read(10s);
    ASSERT_TRUE(chunk.ok()) << chunk.error().ToString();
    if (!*chunk) break;
    ((*chunk)->stream == LogStream::kStdout ? out : err) += (*chunk)->data;
  }
  auto r = (*s)->Wait(10s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 5);
  EXPECT_EQ(out, "got:hello\nyes\n");
  EXPECT_EQ(err, "to-stderr\n");

  auto stats = c->QueryStats();
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_GT(stats->memory_total_bytes, 0u);
  EXPECT_GE(stats->pids, 1u);

  ASSERT_TRUE(c->Shutdown().ok());
  auto o = Collect(*c);
  EXPECT_EQ(o.exit.exit_code, 128 + SIGTERM);
  AckAndWaitForShutdown(*c);
}

TEST_F(InitNamespaceTest, ExecWithTtyHasTerminalAndResize) {
  Start(BaseSpec("while true; do sleep 0.05; done"));
  auto c = Connect();
  ASSERT_TRUE(c);
  ExecOptions e;
  e.argv = {"sh"};
  e.tty = true;
  e.rows = 33;
  e.cols = 101;
  auto s = c->Exec(e);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  std::string out;
  auto read_until = [&](const std::string& marker) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (out.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      auto chunk = (*s)->Read(200ms);
      if (chunk.ok() && *chunk) out += (*chunk)->data;
      if (chunk.ok() && !*chunk) break;
    }
    return out.find(marker) != std::string::npos;
  };
  // The terminal echoes what we type, so the marker the shell prints must differ from the typed text.
  ASSERT_TRUE((*s)->Write("tty; stty size; echo T=$TERM; echo mark$((40+2))\n").ok());
  ASSERT_TRUE(read_until("mark42")) << out;
  EXPECT_NE(out.find("/dev/pts/"), std::string::npos) << out;
  EXPECT_NE(out.find("33 101"), std::string::npos) << out;
  EXPECT_NE(out.find("T=xterm"), std::string::npos) << out;
  ASSERT_TRUE((*s)->Resize(40, 120).ok());
  ASSERT_TRUE((*s)->Write("stty size; exit 7\n").ok());
  ASSERT_TRUE(read_until("40 120")) << out;
  auto r = (*s)->Wait(10s);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 7);
  ASSERT_TRUE(c->Shutdown().ok());
  Collect(*c);
  AckAndWaitForShutdown(*c);
}

TEST_F(InitNamespaceTest, NetworkAddressesRoutesAndMtuOverNetlink) {
  auto spec = BaseSpec("ip -4 addr show lo; ip -6 addr show lo; ip route; hostname");
  spec.hostname = "netbox";
  spec.network.interfaces = {{"lo", "", 9000, {"10.7.0.1/32", "fd00::7/128"}}};
  spec.network.routes = {{"10.8.0.0/16", "", "lo", 0}};
  auto o = RunToEnd(spec);
  EXPECT_EQ(o.exit.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("mtu 9000"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("10.7.0.1/32"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("fd00::7/128"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("10.8.0.0/16 dev lo"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("netbox"), std::string::npos) << o.out;
  EXPECT_GT(o.status.boot.network_up_ns, 0u);
}

TEST_F(InitNamespaceTest, MissingExecutableIs127WithAClearError) {
  auto spec = BaseSpec("");
  spec.process.entrypoint = std::vector<std::string>{"no-such-program"};
  auto o = RunToEnd(spec);
  EXPECT_EQ(o.exit.exit_code, 127);
  EXPECT_NE(o.exit.err.find("\"no-such-program\": executable file not found in $PATH"), std::string::npos)
      << o.exit.err;
  EXPECT_EQ(o.status.phase, GuestPhase::kFailed);
}

TEST_F(InitNamespaceTest, MalformedConfigIsReportedAndInitKeepsServing) {
  Start(std::string(R"({"version":1,"root":{"directory":"/x"},"process":{"usr":"app"}})"));
  auto c = Connect();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->initial_status().phase, GuestPhase::kFailed);
  EXPECT_NE(c->initial_status().error.find("process.usr: unknown field"), std::string::npos)
      << c->initial_status().error;
  auto again = c->QueryStatus();  // still serving
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->phase, GuestPhase::kFailed);
  auto exit = c->WaitExit(5s);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->exit_code, 125);
  EXPECT_NE(exit->err.find("process.usr"), std::string::npos);
  AckAndWaitForShutdown(*c);
}

// Reads frames from a raw socket until a GuestMessage matching pred arrives.
std::optional<v1::GuestMessage> ReadUntil(int fd, FrameDecoder& d,
                                          const std::function<bool(const v1::GuestMessage&)>& pred) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  char buf[65536];
  while (std::chrono::steady_clock::now() < deadline) {
    while (auto p = d.Next()) {
      v1::GuestMessage m;
      if (m.ParseFromString(*p) && pred(m)) return m;
    }
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return std::nullopt;
    if (n > 0) {
      d.Feed(buf, static_cast<size_t>(n));
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
  return std::nullopt;
}

TEST_F(InitNamespaceTest, MalformedControlMessagesGetErrorsAndInitKeepsRunning) {
  Start(BaseSpec("echo ready; while true; do sleep 0.05; done"));
  auto fd = AgentClient::DialUnix(dir_.Path("agent.sock"), 10s);
  ASSERT_TRUE(fd.ok());
  FrameDecoder d;
  auto send_frame = [&](const std::string& payload) {
    std::string frame;
    AppendFrame(frame, payload);
    ASSERT_EQ(send(fd->get(), frame.data(), frame.size(), MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
  };
  // Line noise first: skipped by the framing layer without an answer.
  std::string noise = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_EQ(send(fd->get(), noise.data(), noise.size(), MSG_NOSIGNAL), static_cast<ssize_t>(noise.size()));
  // A well-framed payload that is not a HostMessage.
  send_frame(std::string("\xff\xff\xff\xff\x0f", 5));
  auto bad = ReadUntil(fd->get(), d, [](const v1::GuestMessage& m) { return m.has_reply(); });
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->reply().error_code(), "invalid argument");
  EXPECT_NE(bad->reply().error().find("do not parse as nfc.guest.v1.HostMessage"), std::string::npos);
  // A valid message before hello.
  v1::HostMessage status;
  status.set_request_id(7);
  status.mutable_status();
  send_frame(status.SerializeAsString());
  auto early = ReadUntil(fd->get(), d, [](const v1::GuestMessage& m) { return m.request_id() == 7; });
  ASSERT_TRUE(early.has_value());
  EXPECT_NE(early->reply().error().find("send Hello first"), std::string::npos);
  // An unsupported protocol version.
  v1::HostMessage hello;
  hello.set_request_id(8);
  hello.mutable_hello()->set_min_version(99);
  hello.mutable_hello()->set_max_version(100);
  send_frame(hello.SerializeAsString());
  auto refused = ReadUntil(fd->get(), d, [](const v1::GuestMessage& m) { return m.request_id() == 8; });
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->reply().error().find("this init speaks 1"), std::string::npos);

  // Init is unharmed: a proper client works and the workload still runs.
  auto c = Connect();
  ASSERT_TRUE(c);
  auto st = c->QueryStatus();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->phase, GuestPhase::kRunning);
  EXPECT_FALSE(c->Signal(99).ok());  // a bad request gets an error, nothing else happens
  auto st2 = c->QueryStatus();
  ASSERT_TRUE(st2.ok());
  EXPECT_EQ(st2->phase, GuestPhase::kRunning);
  ASSERT_TRUE(c->Shutdown().ok());
  auto o = Collect(*c);
  EXPECT_EQ(o.exit.exit_code, 128 + SIGTERM);
  AckAndWaitForShutdown(*c);
}

}  // namespace
}  // namespace nfc::guest
