#include "guest/agent_client.h"

#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "base/unix_socket.h"
#include "guest/agent.pb.h"
#include "guest/framing.h"
#include "guest/protocol.h"

namespace nfc::guest {
namespace {

namespace pb = ::nfc::guest::v1;
using Clock = std::chrono::steady_clock;

uint64_t RandomU64() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v)
    v = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  return v;
}

Status WriteAll(int fd, std::string_view data, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Error::Errno("write to guest agent");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0)
      return Error::Timeout("write to guest agent: timed out after " + std::to_string(timeout.count()) +
                            " ms");
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
      return Error::Errno("poll guest agent");
  }
  return Ok();
}

// Shared state of a connection; GuestExecClients keep it alive after the client is gone.
class Core : public std::enable_shared_from_this<Core> {
 public:
  struct Exec {
    std::deque<LogChunk> output;
    std::optional<ExitResult> exit;
    int pid = 0;
  };

  Core(UniqueFd fd, AgentClient::Options options) : fd_(std::move(fd)), options_(std::move(options)) {
    delivered_ = options_.resume;
    acked_ = options_.resume;
  }

  Status Send(pb::HostMessage& msg) {
    std::string payload = msg.SerializeAsString();
    if (payload.size() > kMaxFramePayload) return Error::InvalidArgument("message too large for one frame");
    std::string frame;
    AppendFrame(frame, payload);
    std::lock_guard<std::mutex> lock(write_mu_);
    if (closed_.load()) return Error::Unavailable("guest agent connection is closed");
    return WriteAll(fd_.get(), frame, options_.request_timeout);
  }

  // Reads until a HelloReply for session arrives; then the reader thread takes over.
  Status Handshake() {
    session_ = RandomU64();
    pb::HostMessage hello;
    auto* h = hello.mutable_hello();
    h->set_min_version(kProtocolVersion);
    h->set_max_version(kProtocolVersion);
    h->set_session(session_);
    h->set_client(options_.client_name);
    for (LogStream s : {LogStream::kStdout, LogStream::kStderr}) {
      auto* r = h->add_resume();
      r->set_stream(static_cast<pb::Stream>(s));
      r->set_offset(options_.resume.at(s));
    }
    auto deadline = Clock::now() + options_.handshake_timeout;
    auto next_hello = Clock::now();
    char buf[65536];
    for (;;) {
      auto now = Clock::now();
      if (now >= deadline) {
        return Error::Timeout("guest agent did not answer hello within " +
                              std::to_string(options_.handshake_timeout.count()) + " ms");
      }
      if (now >= next_hello) {
        NFC_RETURN_IF_ERROR(Send(hello));
        next_hello = now + std::chrono::seconds(1);
        decoder_.DropStalePartial();  // a frame cut by a reconnect must not hold the reply back
      }
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(std::min(deadline, next_hello) - now);
      pollfd p{fd_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(wait.count(), 1)));
      if (r < 0 && errno != EINTR) return Error::Errno("poll guest agent");
      if (r <= 0) continue;
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::Errno("read from guest agent");
      if (n == 0) return Error::Unavailable("guest agent closed the connection during hello");
      decoder_.Feed(buf, static_cast<size_t>(n));
      while (auto payload = decoder_.Next()) {
        pb::GuestMessage msg;
        if (!msg.ParseFromString(*payload)) continue;
        if (msg.has_reply() && !msg.reply().error_code().empty() && msg.request_id() == 0) {
          return Error::FailedPrecondition("guest agent refused hello: " + msg.reply().error());
        }
        if (!msg.has_hello_reply() || msg.hello_reply().session() != session_)
          continue;  // stale, from before
        const auto& hr = msg.hello_reply();
        version_ = hr.version();
        init_version_ = hr.init_version();
        boot_id_ = hr.boot_id();
        initial_status_ = FromProto(hr.status());
        for (const auto& s : hr.log_start()) {
          LogStream stream = s.stream() == pb::STREAM_STDERR ? LogStream::kStderr : LogStream::kStdout;
          // The guest no longer holds what we asked for: it was acknowledged by someone before us. Skip
          // ahead.
          if (s.offset() > delivered_.at(stream)) delivered_.at(stream) = s.offset();
        }
        if (initial_status_.exit) exit_ = initial_status_.exit;
        return Ok();
      }
    }
  }

  void Start() {
    reader_ = std::thread([self = shared_from_this()] { self->ReadLoop(); });
  }

  void ReadLoop() {
    char buf[65536];
    // The read that carried the HelloReply may have carried the frames after it too: they are in the decoder.
    DispatchBuffered();
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      decoder_.Feed(buf, static_cast<size_t>(n));
      DispatchBuffered();
    }
    std::lock_guard<std::mutex> lock(mu_);
    disconnected_ = true;
    cv_.notify_all();
  }

  void DispatchBuffered() {
    while (auto payload = decoder_.Next()) {
      pb::GuestMessage msg;
      if (!msg.ParseFromString(*payload)) continue;
      Dispatch(msg);
    }
  }

  void Dispatch(const pb::GuestMessage& msg) {
    std::lock_guard<std::mutex> lock(mu_);
    switch (msg.body_case()) {
      case pb::GuestMessage::kLog: {
        const auto& c = msg.log();
        LogStream stream = c.stream() == pb::STREAM_STDERR ? LogStream::kStderr : LogStream::kStdout;
        uint64_t& next = delivered_.at(stream);
        // A chunk whose end would pass 2^64 is malformed (a guest that wraps the offset would move the
        // stream back and have old lines delivered again): dropped.
        if (c.offset() > std::numeric_limits<uint64_t>::max() - c.data().size()) break;
        uint64_t end = c.offset() + c.data().size();
        if (end <= next) break;  // already delivered (resent after a reconnect)
        if (c.offset() > next) {
          // Cannot happen with a correct guest (it sends in order from our resume point); surface it in the
          // data rather than pretend the stream is whole.
          gap_bytes_ += c.offset() - next;
          next = c.offset();
        }
        size_t skip = static_cast<size_t>(next - c.offset());
        logs_.push_back({stream, next, c.data().substr(skip)});
        next = end;
        break;
      }
      case pb::GuestMessage::kExit:
        exit_ = FromProto(msg.exit());
        break;
      case pb::GuestMessage::kFiles:
        file_batches_.push_back(msg.files());
        break;
      case pb::GuestMessage::kExecStarted: {
        auto& e = execs_[msg.exec_started().exec_id()];
        e.pid = msg.exec_started().pid();
        responses_[msg.request_id()] = msg;
        break;
      }
      case pb::GuestMessage::kExecOutput: {
        auto it = execs_.find(msg.exec_output().exec_id());
        if (it == execs_.end()) break;
        LogStream stream =
            msg.exec_output().stream() == pb::STREAM_STDERR ? LogStream::kStderr : LogStream::kStdout;
        it->second.output.push_back({stream, 0, msg.exec_output().data()});
        break;
      }
      case pb::GuestMessage::kExecExited: {
        auto it = execs_.find(msg.exec_exited().exec_id());
        if (it == execs_.end()) break;
        ExitResult r;
        r.exit_code = msg.exec_exited().exit_code();
        r.signal = msg.exec_exited().signal();
        it->second.exit = r;
        break;
      }
      default:
        if (msg.request_id() != 0) responses_[msg.request_id()] = msg;
        break;
    }
    cv_.notify_all();
  }

  // Sends msg with a fresh request id and waits for the message answering it.
  Result<pb::GuestMessage> Call(pb::HostMessage& msg) {
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = ++next_request_;
    }
    msg.set_request_id(id);
    NFC_RETURN_IF_ERROR(Send(msg));
    std::unique_lock<std::mutex> lock(mu_);
    bool got =
        cv_.wait_for(lock, options_.request_timeout, [&] { return responses_.count(id) || disconnected_; });
    auto it = responses_.find(id);
    if (it == responses_.end()) {
      if (!got)
        return Error::Timeout("guest agent did not answer within " +
                              std::to_string(options_.request_timeout.count()) + " ms");
      return Error::Unavailable("guest agent connection lost");
    }
    pb::GuestMessage reply = std::move(it->second);
    responses_.erase(it);
    if (reply.has_reply() && !reply.reply().error_code().empty()) {
      return Error(ErrorCodeFromName(reply.reply().error_code()), "guest: " + reply.reply().error());
    }
    return reply;
  }

  void Close() {
    if (closed_.exchange(true)) return;
    ::shutdown(fd_.get(), SHUT_RDWR);
    if (reader_.joinable()) {
      if (reader_.get_id() == std::this_thread::get_id()) {
        reader_.detach();
      } else {
        reader_.join();
      }
    }
  }

  ~Core() { Close(); }

  UniqueFd fd_;
  AgentClient::Options options_;
  std::mutex write_mu_;
  std::atomic<bool> closed_{false};
  FrameDecoder decoder_;
  std::thread reader_;
  uint64_t session_ = 0;

  // From the hello; immutable afterwards.
  uint32_t version_ = 0;
  std::string init_version_;
  uint64_t boot_id_ = 0;
  GuestStatus initial_status_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool disconnected_ = false;
  uint64_t next_request_ = 0;
  std::map<uint64_t, pb::GuestMessage> responses_;
  std::deque<LogChunk> logs_;
  LogOffsets delivered_;  // next offset expected per stream
  LogOffsets acked_;
  uint64_t gap_bytes_ = 0;
  std::optional<ExitReport> exit_;
  std::map<uint64_t, Exec> execs_;
  std::deque<pb::FileBatch> file_batches_;
};

class GuestExecClientImpl : public GuestExecClient {
 public:
  GuestExecClientImpl(std::shared_ptr<Core> core, uint64_t id, int pid)
      : core_(std::move(core)), id_(id), pid_(pid) {}
  ~GuestExecClientImpl() override {
    std::lock_guard<std::mutex> lock(core_->mu_);
    core_->execs_.erase(id_);
  }

  uint64_t id() const override { return id_; }
  int pid() const override { return pid_; }

  Status Write(std::string_view data) override {
    // Chunks stay well below the frame limit and the guest's per-message budget.
    while (!data.empty()) {
      size_t n = std::min<size_t>(data.size(), size_t{32} * 1024);
      pb::HostMessage m;
      m.mutable_exec_input()->set_exec_id(id_);
      m.mutable_exec_input()->set_data(std::string(data.substr(0, n)));
      NFC_RETURN_IF_ERROR(core_->Send(m));
      data.remove_prefix(n);
    }
    return Ok();
  }
  Status CloseStdin() override {
    pb::HostMessage m;
    m.mutable_exec_input()->set_exec_id(id_);
    m.mutable_exec_input()->set_close(true);
    return core_->Send(m);
  }
  Status Resize(uint32_t rows, uint32_t cols) override {
    pb::HostMessage m;
    m.mutable_exec_resize()->set_exec_id(id_);
    m.mutable_exec_resize()->set_rows(rows);
    m.mutable_exec_resize()->set_cols(cols);
    auto r = core_->Call(m);
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }
  Status Signal(int signal) override {
    pb::HostMessage m;
    m.mutable_exec_signal()->set_exec_id(id_);
    m.mutable_exec_signal()->set_signal(signal);
    auto r = core_->Call(m);
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }
  Result<std::optional<LogChunk>> Read(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(core_->mu_);
    auto& e = core_->execs_[id_];
    bool ready = core_->cv_.wait_for(lock, timeout,
                                     [&] { return !e.output.empty() || e.exit || core_->disconnected_; });
    if (!e.output.empty()) {
      LogChunk c = std::move(e.output.front());
      e.output.pop_front();
      return std::optional<LogChunk>(std::move(c));
    }
    if (e.exit) return std::optional<LogChunk>();
    if (!ready)
      return Error::Timeout("exec " + std::to_string(id_) + ": no output within " +
                            std::to_string(timeout.count()) + " ms");
    return Error::Unavailable("exec " + std::to_string(id_) + ": guest agent connection lost");
  }
  Result<ExitResult> Wait(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(core_->mu_);
    auto& e = core_->execs_[id_];
    bool ready = core_->cv_.wait_for(lock, timeout, [&] { return e.exit || core_->disconnected_; });
    if (e.exit) return *e.exit;
    if (!ready)
      return Error::Timeout("exec " + std::to_string(id_) + ": still running after " +
                            std::to_string(timeout.count()) + " ms");
    return Error::Unavailable("exec " + std::to_string(id_) + ": guest agent connection lost");
  }

 private:
  std::shared_ptr<Core> core_;
  uint64_t id_;
  int pid_;
};

class AgentClientImpl : public AgentClient {
 public:
  explicit AgentClientImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  ~AgentClientImpl() override { core_->Close(); }

  uint32_t protocol_version() const override { return core_->version_; }
  std::string init_version() const override { return core_->init_version_; }
  uint64_t boot_id() const override { return core_->boot_id_; }
  GuestStatus initial_status() const override { return core_->initial_status_; }
  bool connected() const override {
    std::lock_guard<std::mutex> lock(core_->mu_);
    return !core_->disconnected_ && !core_->closed_.load();
  }

  Result<std::optional<LogChunk>> NextLog(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(core_->mu_);
    core_->cv_.wait_for(lock, timeout, [&] { return !core_->logs_.empty() || core_->disconnected_; });
    if (!core_->logs_.empty()) {
      LogChunk c = std::move(core_->logs_.front());
      core_->logs_.pop_front();
      return std::optional<LogChunk>(std::move(c));
    }
    if (core_->disconnected_) return Error::Unavailable("guest agent connection lost");
    return std::optional<LogChunk>();
  }

  Status AckLog(LogStream stream, uint64_t offset) override {
    {
      std::lock_guard<std::mutex> lock(core_->mu_);
      if (offset <= core_->acked_.at(stream)) return Ok();
      core_->acked_.at(stream) = offset;
    }
    pb::HostMessage m;
    auto* a = m.mutable_log_ack()->add_acked();
    a->set_stream(static_cast<pb::Stream>(stream));
    a->set_offset(offset);
    return core_->Send(m);
  }

  LogOffsets acked() const override {
    std::lock_guard<std::mutex> lock(core_->mu_);
    return core_->acked_;
  }

  Result<ExitReport> WaitExit(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(core_->mu_);
    bool ready =
        core_->cv_.wait_for(lock, timeout, [&] { return core_->exit_.has_value() || core_->disconnected_; });
    if (core_->exit_) return *core_->exit_;
    if (!ready)
      return Error::Timeout("workload still running after " + std::to_string(timeout.count()) + " ms");
    return Error::Unavailable("guest agent connection lost before the exit result arrived");
  }

  nfc::Status AckExit() override {
    pb::HostMessage m;
    m.mutable_exit_ack();
    auto r = core_->Call(m);
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }

  Result<GuestStatus> QueryStatus() override {
    pb::HostMessage m;
    m.mutable_status();
    NFC_ASSIGN_OR_RETURN(pb::GuestMessage r, core_->Call(m));
    if (!r.has_status()) return Error::Internal("guest answered a status request with something else");
    return FromProto(r.status());
  }

  Result<GuestStats> QueryStats() override {
    pb::HostMessage m;
    m.mutable_stats();
    NFC_ASSIGN_OR_RETURN(pb::GuestMessage r, core_->Call(m));
    if (!r.has_stats()) return Error::Internal("guest answered a stats request with something else");
    const auto& s = r.stats();
    GuestStats g;
    g.timestamp_ns = s.timestamp_ns();
    g.cpu_user_usec = s.cpu_user_usec();
    g.cpu_system_usec = s.cpu_system_usec();
    g.cpu_total_usec = s.cpu_total_usec();
    g.memory_rss_bytes = s.memory_rss_bytes();
    g.memory_usage_bytes = s.memory_usage_bytes();
    g.memory_cache_bytes = s.memory_cache_bytes();
    g.memory_total_bytes = s.memory_total_bytes();
    g.memory_available_bytes = s.memory_available_bytes();
    g.pids = s.pids();
    g.from_cgroup = s.from_cgroup();
    return g;
  }

  nfc::Status Signal(int signal, bool process_only) override {
    pb::HostMessage m;
    m.mutable_signal()->set_signal(signal);
    m.mutable_signal()->set_process_only(process_only);
    auto r = core_->Call(m);
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }

  nfc::Status Shutdown(int signal, std::chrono::milliseconds kill_timeout) override {
    pb::HostMessage m;
    m.mutable_shutdown()->set_signal(signal);
    m.mutable_shutdown()->set_kill_timeout_ms(static_cast<uint32_t>(kill_timeout.count()));
    auto r = core_->Call(m);
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }

  Result<std::unique_ptr<GuestExecClient>> Exec(const ExecOptions& o) override {
    if (o.argv.empty()) return Error::InvalidArgument("exec: empty argv");
    pb::HostMessage m;
    auto* e = m.mutable_exec_start();
    for (const auto& a : o.argv) e->add_argv(a);
    for (const auto& v : o.env) e->add_env(v);
    e->set_working_dir(o.working_dir);
    e->set_user(o.user);
    e->set_tty(o.tty);
    e->set_rows(o.rows);
    e->set_cols(o.cols);
    NFC_ASSIGN_OR_RETURN(pb::GuestMessage r, core_->Call(m));
    if (!r.has_exec_started()) return Error::Internal("guest answered exec with something else");
    return std::unique_ptr<GuestExecClient>(
        new GuestExecClientImpl(core_, r.exec_started().exec_id(), r.exec_started().pid()));
  }

  nfc::Status SendFiles(const pb::FileBatch& batch) override {
    pb::HostMessage m;
    *m.mutable_files() = batch;
    auto r = core_->Call(m);
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }

  nfc::Status FilesReady(const std::string& error) override {
    pb::HostMessage m;
    m.mutable_files_ready()->set_error(error);
    auto r = core_->Call(m);
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }

  nfc::Status DeliverTask(const std::string& spec_json, const std::string& entropy,
                          int64_t realtime_unix_ns) override {
    pb::HostMessage m;
    auto* t = m.mutable_task();
    t->set_spec_json(spec_json);
    t->set_entropy(entropy);
    t->set_realtime_unix_ns(realtime_unix_ns);
    auto r = core_->Call(m);
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }

  Result<std::optional<pb::FileBatch>> NextFileBatch(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(core_->mu_);
    core_->cv_.wait_for(lock, timeout, [&] { return !core_->file_batches_.empty() || core_->disconnected_; });
    if (!core_->file_batches_.empty()) {
      pb::FileBatch b = std::move(core_->file_batches_.front());
      core_->file_batches_.pop_front();
      return std::optional<pb::FileBatch>(std::move(b));
    }
    if (core_->disconnected_) return Error::Unavailable("guest agent connection lost");
    return std::optional<pb::FileBatch>();
  }

  void Close() override { core_->Close(); }

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace

std::string_view GuestPhaseName(GuestPhase phase) {
  switch (phase) {
    case GuestPhase::kBooting:
      return "booting";
    case GuestPhase::kRunning:
      return "running";
    case GuestPhase::kStopping:
      return "stopping";
    case GuestPhase::kExited:
      return "exited";
    case GuestPhase::kFailed:
      return "failed";
    case GuestPhase::kShuttingDown:
      return "shutting-down";
    case GuestPhase::kAwaitingTask:
      return "awaiting-task";
    case GuestPhase::kUnknown:
      break;
  }
  return "unknown";
}

Result<std::unique_ptr<AgentClient>> AgentClient::Connect(UniqueFd fd, const Options& options) {
  if (!fd) return Error::InvalidArgument("agent client: invalid fd");
  auto core = std::make_shared<Core>(std::move(fd), options);
  NFC_RETURN_IF_ERROR_CTX(core->Handshake(), "guest agent hello");
  core->Start();
  return std::unique_ptr<AgentClient>(new AgentClientImpl(std::move(core)));
}

Result<UniqueFd> AgentClient::DialUnix(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto fd = ConnectUnix(path);
    if (fd.ok()) return fd;
    int err = fd.error().sys_errno();
    if ((err != ENOENT && err != ECONNREFUSED && err != EAGAIN) || Clock::now() >= deadline) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace nfc::guest
