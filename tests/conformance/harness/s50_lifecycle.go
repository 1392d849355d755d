package main

// The task lifecycle as the Nomad client drives it (reference 5.1-5.12, 6), with real microVMs (QEMU backend; TCG
// on the development machines) booted from the demo image in nfc-harness-env's registry. Guest scenarios: they
// run only with -lifecycle (CTest conformance_lifecycle, label lifecycle).

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	drvpb "nfcproto/drivers"
)

func init() {
	register(
		Scenario{Name: "lifecycle-exit-codes-and-output", Guest: true, Timeout: 4 * time.Minute, Run: testExitCodesAndOutput},
		Scenario{Name: "lifecycle-stop-graceful-and-after-timeout", Guest: true, Timeout: 3 * time.Minute, Run: testStop},
		Scenario{Name: "lifecycle-signal-exec-stats-events", Guest: true, Timeout: 3 * time.Minute, Run: testSignalExecStats},
	)
}

// guestScenario prepares a Guest scenario: a fresh data dir, swept at the end (what a scenario leaves there is
// reported: every scenario checks itself that DestroyTask leaves nothing).
func (h *H) guestScenario() {
	dir := h.dataDir()
	h.OnCleanup(func() {
		if left := processesMentioning(dir); len(left) > 0 {
			fmt.Printf("     LEAK: processes left in %s after the scenario (killed now): %v\n", dir, left)
			for _, p := range left {
				var pid int
				fmt.Sscanf(p, "%d:", &pid)
				if pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		os.RemoveAll(dir)
	})
}

// The client's usual run: StartTask, WaitTask (two concurrent callers), logs in the right files, InspectTask
// EXITED with the result, TaskEvents seen, DestroyTask twice, nothing left. Exit codes 0, 3 and 128+SIGUSR1.
func testExitCodesAndOutput(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	type tc struct {
		name, script   string
		code, signal   int32
		stdout, stderr string // "%ALLOC%" stands for the alloc id
	}
	cases := []tc{
		{"ok", "echo to-stdout; echo to-stderr >&2; echo task=$NOMAD_TASK_NAME alloc=$NOMAD_ALLOC_ID dir=$NOMAD_TASK_DIR greeting=$GREETING",
			0, 0, "to-stdout\ntask=ok alloc=%ALLOC% dir=/local greeting=from-the-job-env-block\n", "to-stderr\n"},
		{"three", "echo bye; echo err-bye >&2; exit 3", 3, 0, "bye\n", "err-bye\n"},
		{"sig", "echo before; kill -USR1 $$; echo after", 128 + int32(syscall.SIGUSR1), int32(syscall.SIGUSR1), "before\n", ""},
		// Volume: ~1.3 MB as fast as the guest writes it, every byte in order, then the exit.
		{"bulk", "seq 1 200000; echo bulk-done >&2", 0, 0, seqText(200000), "bulk-done\n"},
	}
	var startTimes []string
	for _, c := range cases {
		t, err := h.newTask(rt.Instance, c.name, taskHCL([]string{"/bin/sh", "-c", c.script}, ""))
		if err != nil {
			return err
		}
		handle, took, err := rt.startTask(t)
		if err != nil {
			return err
		}
		startTimes = append(startTimes, fmt.Sprint(took.Milliseconds()))
		id := t.Config.Id
		// Two WaitTask callers (the task runner and a restart/kill path), both answered.
		type waited struct {
			resp *drvpb.WaitTaskResponse
			err  error
		}
		second := make(chan waited, 1)
		go func() {
			r, err := rt.waitTask(id, 2*time.Minute)
			second <- waited{r, err}
		}()
		res, err := rt.waitTask(id, 2*time.Minute)
		if err != nil {
			return fmt.Errorf("%s: %v", c.name, err)
		}
		if res.GetResult().GetExitCode() != c.code || res.GetResult().GetSignal() != c.signal || res.GetErr() != "" {
			return fmt.Errorf("%s: WaitTask %s, want exit_code=%d signal=%d", c.name, describeExit(res), c.code, c.signal)
		}
		w2 := <-second
		if w2.err != nil || w2.resp.GetResult().GetExitCode() != c.code {
			return fmt.Errorf("%s: the second WaitTask caller got %v %v", c.name, w2.resp, w2.err)
		}
		wantOut := strings.ReplaceAll(c.stdout, "%ALLOC%", t.Config.AllocId)
		if err := waitForExactOutput(t.Stdout, wantOut, 10*time.Second); err != nil {
			return fmt.Errorf("%s: %v", c.name, err)
		}
		if err := waitForExactOutput(t.Stderr, c.stderr, 5*time.Second); err != nil {
			return fmt.Errorf("%s: %v", c.name, err)
		}
		info, err := rt.inspectTask(id)
		if err != nil {
			return err
		}
		st := info.GetTask()
		if st.GetState() != drvpb.TaskState_EXITED || st.GetResult().GetExitCode() != c.code || st.GetId() != id ||
			st.GetStartedAt() == nil || st.GetCompletedAt() == nil || !st.GetCompletedAt().AsTime().After(st.GetStartedAt().AsTime()) {
			return fmt.Errorf("%s: InspectTask after the exit: %v", c.name, st)
		}
		if evs := rt.events.forTask(id); len(evs) == 0 {
			return fmt.Errorf("%s: no TaskEvents for the task", c.name)
		} else if evs[0].GetAllocId() != t.Config.AllocId || evs[0].GetTaskName() != c.name || evs[0].GetTimestamp() == nil || evs[0].GetMessage() == "" {
			return fmt.Errorf("%s: a TaskEvent the client cannot route: %v", c.name, evs[0])
		}
		if err := rt.destroyAndCheck(id, handle); err != nil {
			return fmt.Errorf("%s: %v", c.name, err)
		}
		// After DestroyTask the task is unknown: WaitTask answers with an error, not a hang.
		if _, err := rt.waitTask(id, 10*time.Second); err == nil {
			return fmt.Errorf("%s: WaitTask after DestroyTask succeeded", c.name)
		}
	}
	h.Metric("start_task_to_running_ms", strings.Join(startTimes, ","))
	if left := h.taskDirs(); len(left) > 0 {
		return fmt.Errorf("task dirs left: %v", left)
	}
	_, err = rt.Kill(h)
	return err
}

func seqText(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// StopTask(timeout, "SIGTERM"): a workload trapping SIGTERM exits by itself well before the timeout; one ignoring
// it is killed after the timeout (and not before).
func testStop(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	trap, err := h.newTask(rt.Instance, "trap", taskHCL([]string{"/bin/sh", "-c",
		"trap 'echo graceful; exit 0' TERM; echo ready; while true; do sleep 0.2; done"}, ""))
	if err != nil {
		return err
	}
	ignore, err := h.newTask(rt.Instance, "ignore", taskHCL([]string{"/bin/sh", "-c",
		"trap '' TERM; echo ready; while true; do sleep 0.2; done"}, ""))
	if err != nil {
		return err
	}
	// The client starts the tasks of a group concurrently.
	type started struct {
		handle *drvpb.TaskHandle
		err    error
	}
	ignoreCh := make(chan started, 1)
	go func() {
		handle, _, err := rt.startTask(ignore)
		ignoreCh <- started{handle, err}
	}()
	trapHandle, _, err := rt.startTask(trap)
	other := <-ignoreCh
	if err != nil {
		return err
	}
	if other.err != nil {
		return other.err
	}
	ignoreHandle := other.handle
	for _, t := range []*nomadTask{trap, ignore} {
		if err := waitForOutput(t.Stdout, "ready\n", 60*time.Second); err != nil {
			return err
		}
	}

	start := time.Now()
	if err := rt.stopTask(trap.Config.Id, 20*time.Second, "SIGTERM"); err != nil {
		return err
	}
	res, err := rt.waitTask(trap.Config.Id, time.Minute)
	took := time.Since(start)
	if err != nil {
		return err
	}
	h.Metric("stop_trapping_workload_ms", took.Milliseconds())
	if res.GetResult().GetExitCode() != 0 || res.GetResult().GetSignal() != 0 || res.GetErr() != "" {
		return fmt.Errorf("trapping workload: %s, want a clean exit 0", describeExit(res))
	}
	if took >= 15*time.Second {
		return fmt.Errorf("StopTask waited %v for a workload that exits on SIGTERM (timeout 20 s)", took)
	}
	if err := waitForExactOutput(trap.Stdout, "ready\ngraceful\n", 5*time.Second); err != nil {
		return err
	}
	if err := rt.destroyAndCheck(trap.Config.Id, trapHandle); err != nil {
		return err
	}

	const timeout = 3 * time.Second
	start = time.Now()
	if err := rt.stopTask(ignore.Config.Id, timeout, "SIGTERM"); err != nil {
		return err
	}
	res, err = rt.waitTask(ignore.Config.Id, time.Minute)
	took = time.Since(start)
	if err != nil {
		return err
	}
	h.Metric("stop_ignoring_workload_ms", took.Milliseconds())
	if took < timeout {
		return fmt.Errorf("a workload ignoring SIGTERM was stopped after %v, before the %v timeout", took, timeout)
	}
	if took > timeout+30*time.Second {
		return fmt.Errorf("stopping took %v, far past the %v timeout", took, timeout)
	}
	if res.GetResult().GetSignal() != int32(syscall.SIGKILL) || res.GetResult().GetExitCode() != 128+int32(syscall.SIGKILL) {
		return fmt.Errorf("ignoring workload: %s, want killed by SIGKILL (137/9)", describeExit(res))
	}
	if err := rt.destroyAndCheck(ignore.Config.Id, ignoreHandle); err != nil {
		return err
	}
	_, err = rt.Kill(h)
	return err
}

// One long-running busy task for SignalTask, InspectTask, ExecTask, ExecTaskStreaming (pipe and TTY), TaskStats
// and TaskEvents; then StopTask with its default-action SIGTERM.
func testSignalExecStats(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	t, handle, err := h.startShell(rt, "busy", "trap 'echo got-hup' HUP; echo ready; while true; do :; done")
	if err != nil {
		return err
	}
	id := t.Config.Id
	if err := waitForOutput(t.Stdout, "ready\n", 60*time.Second); err != nil {
		return err
	}
	// StartTask again with the same id (reference 5.3): an error, and the running task is left alone.
	if _, _, err := rt.startTask(t); err == nil {
		return fmt.Errorf("a second StartTask with the id of a running task succeeded")
	} else if !strings.Contains(err.Error(), id) {
		return fmt.Errorf("second StartTask: %v, want an error naming the task id", err)
	}
	state, err := decodeDriverState(handle.GetDriverState())
	if err != nil {
		return err
	}
	if !procAlive(state.Shim.Pid, state.TaskDir) {
		return fmt.Errorf("the second StartTask took the running task's shim down")
	}
	info, err := rt.inspectTask(id)
	if err != nil {
		return err
	}
	if info.GetTask().GetState() != drvpb.TaskState_RUNNING || info.GetTask().GetStartedAt() == nil || info.GetTask().GetCompletedAt() == nil {
		return fmt.Errorf("InspectTask of a running task: %v", info.GetTask())
	}

	// SignalTask: the name as Nomad sends it; the workload's trap writes to stdout.
	ctx, cancel := ctxTimeout(30 * time.Second)
	_, err = rt.Driver.SignalTask(ctx, &drvpb.SignalTaskRequest{TaskId: id, Signal: "SIGHUP"})
	cancel()
	if err != nil {
		return fmt.Errorf("SignalTask(SIGHUP): %v", err)
	}
	if err := waitForOutput(t.Stdout, "got-hup\n", 30*time.Second); err != nil {
		return fmt.Errorf("SIGHUP did not reach the workload: %v", err)
	}
	ctx, cancel = ctxTimeout(30 * time.Second)
	_, err = rt.Driver.SignalTask(ctx, &drvpb.SignalTaskRequest{TaskId: id, Signal: "SIGNOPE"})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "SIGNOPE") {
		return fmt.Errorf("SignalTask(SIGNOPE): %v, want an error naming the signal", err)
	}

	// ExecTask (script checks): stdout, stderr and the exit code.
	ctx, cancel = ctxTimeout(60 * time.Second)
	start := time.Now()
	ex, err := rt.Driver.ExecTask(ctx, &drvpb.ExecTaskRequest{TaskId: id, Command: []string{"sh", "-c", "echo x; echo y >&2; exit 7"},
		Timeout: durationpb.New(30 * time.Second)})
	cancel()
	if err != nil {
		return fmt.Errorf("ExecTask: %v", err)
	}
	h.Metric("exec_task_ms", time.Since(start).Milliseconds())
	if string(ex.GetStdout()) != "x\n" || string(ex.GetStderr()) != "y\n" || ex.GetResult().GetExitCode() != 7 {
		return fmt.Errorf("ExecTask: stdout %q stderr %q result %v, want \"x\\n\" \"y\\n\" 7", ex.GetStdout(), ex.GetStderr(), ex.GetResult())
	}

	// ExecTask's timeout: the command is stopped and the call returns, with a failure the check can see.
	ctx, cancel = ctxTimeout(60 * time.Second)
	start = time.Now()
	ex, err = rt.Driver.ExecTask(ctx, &drvpb.ExecTaskRequest{TaskId: id, Command: []string{"sleep", "120"},
		Timeout: durationpb.New(2 * time.Second)})
	cancel()
	took := time.Since(start)
	if took < 2*time.Second || took > 20*time.Second {
		return fmt.Errorf("ExecTask with a 2 s timeout returned after %v", took)
	}
	if err == nil && ex.GetResult().GetExitCode() == 0 {
		return fmt.Errorf("ExecTask past its timeout reported success: %v", ex)
	}

	if err := execStreamingPipes(rt, id); err != nil {
		return fmt.Errorf("ExecTaskStreaming without TTY: %v", err)
	}
	if err := execStreamingTTY(rt, id); err != nil {
		return fmt.Errorf("ExecTaskStreaming with TTY: %v", err)
	}
	if err := execStreamingCancel(rt, id); err != nil {
		return fmt.Errorf("ExecTaskStreaming cancelled by the client: %v", err)
	}
	if err := checkStats(h, rt, id); err != nil {
		return err
	}
	if evs := rt.events.forTask(id); len(evs) == 0 {
		return fmt.Errorf("no TaskEvents for the task")
	} else {
		var msgs []string
		for _, ev := range evs {
			msgs = append(msgs, ev.GetMessage())
		}
		h.Metric("task_events", fmt.Sprintf("%q", msgs))
	}

	// No TERM trap: SIGTERM's default action ends the shell; WaitTask reports the signal.
	if err := rt.stopTask(id, 10*time.Second, "SIGTERM"); err != nil {
		return err
	}
	res, err := rt.waitTask(id, time.Minute)
	if err != nil {
		return err
	}
	if res.GetResult().GetSignal() != int32(syscall.SIGTERM) || res.GetResult().GetExitCode() != 128+int32(syscall.SIGTERM) {
		return fmt.Errorf("after StopTask(SIGTERM): %s, want 143/15", describeExit(res))
	}
	if err := rt.destroyAndCheck(id, handle); err != nil {
		return err
	}
	_, err = rt.Kill(h)
	return err
}

// execSession runs one ExecTaskStreaming call and collects what comes back, checking reference 6's framing.
type execSession struct {
	stream         drvpb.Driver_ExecTaskStreamingClient
	stdout, stderr strings.Builder
	exitCode       int32
	exited         bool
	ended          chan error
	cancel         func()
}

func openExec(rt *Runtime, id string, command []string, tty bool) (*execSession, error) {
	ctx, cancel := ctxTimeout(90 * time.Second)
	stream, err := rt.Driver.ExecTaskStreaming(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &execSession{stream: stream, ended: make(chan error, 1), cancel: cancel}
	if err := stream.Send(&drvpb.ExecTaskStreamingRequest{Setup: &drvpb.ExecTaskStreamingRequest_Setup{TaskId: id, Command: command, Tty: tty}}); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

func (s *execSession) send(req *drvpb.ExecTaskStreamingRequest) error { return s.stream.Send(req) }

// receive reads until the stream ends; the exit must come as its own frame after all output, then status OK.
func (s *execSession) receive(progress chan<- string) {
	go func() {
		defer s.cancel()
		for {
			resp, err := s.stream.Recv()
			if err == io.EOF {
				if !s.exited {
					s.ended <- fmt.Errorf("the stream ended without an exit frame")
					return
				}
				s.ended <- nil
				return
			}
			if err != nil {
				s.ended <- fmt.Errorf("stream error: %v", err)
				return
			}
			if s.exited {
				s.ended <- fmt.Errorf("a frame after the exit frame: %v", resp)
				return
			}
			if resp.GetExited() {
				if resp.GetResult() == nil || len(resp.GetStdout().GetData()) > 0 || len(resp.GetStderr().GetData()) > 0 {
					s.ended <- fmt.Errorf("the exit frame must carry a result and no data: %v", resp)
					return
				}
				s.exited, s.exitCode = true, resp.GetResult().GetExitCode()
				continue
			}
			s.stdout.Write(resp.GetStdout().GetData())
			s.stderr.Write(resp.GetStderr().GetData())
			if progress != nil && len(resp.GetStdout().GetData()) > 0 {
				select {
				case progress <- s.stdout.String():
				default:
				}
			}
		}
	}()
}

func (s *execSession) wait(limit time.Duration) error {
	select {
	case err := <-s.ended:
		return err
	case <-time.After(limit):
		s.cancel()
		return fmt.Errorf("no end of the exec stream within %v (stdout %q stderr %q)", limit, s.stdout.String(), s.stderr.String())
	}
}

// Without a TTY: stdin in, stdin close, separate stdout and stderr, the exit code, stream end.
func execStreamingPipes(rt *Runtime, id string) error {
	s, err := openExec(rt, id, []string{"/bin/sh", "-c", "cat; echo err-line >&2; exit 5"}, false)
	if err != nil {
		return err
	}
	s.receive(nil)
	if err := s.send(&drvpb.ExecTaskStreamingRequest{Stdin: &drvpb.ExecTaskStreamingIOOperation{Data: []byte("hello-pipe\n")}}); err != nil {
		return err
	}
	// A heartbeat (none of setup/tty_size/stdin set), as the client sends every 10 s: ignored.
	if err := s.send(&drvpb.ExecTaskStreamingRequest{}); err != nil {
		return err
	}
	if err := s.send(&drvpb.ExecTaskStreamingRequest{Stdin: &drvpb.ExecTaskStreamingIOOperation{Close: true}}); err != nil {
		return err
	}
	if err := s.wait(60 * time.Second); err != nil {
		return err
	}
	if s.stdout.String() != "hello-pipe\n" || s.stderr.String() != "err-line\n" || s.exitCode != 5 {
		return fmt.Errorf("stdout %q stderr %q exit %d, want \"hello-pipe\\n\" \"err-line\\n\" 5", s.stdout.String(), s.stderr.String(), s.exitCode)
	}
	return nil
}

// With a TTY: tty_size at start and on resize (TIOCSWINSZ seen by stty), stdin through the terminal, everything
// on stdout, exit code.
func execStreamingTTY(rt *Runtime, id string) error {
	s, err := openExec(rt, id, []string{"/bin/sh", "-c",
		"tty >/dev/null && echo is-a-tty; stty size; read line; stty size; echo got:$line >&2; exit 3"}, true)
	if err != nil {
		return err
	}
	progress := make(chan string, 16)
	s.receive(progress)
	if err := s.send(&drvpb.ExecTaskStreamingRequest{TtySize: &drvpb.ExecTaskStreamingRequest_TerminalSize{Height: 30, Width: 100}}); err != nil {
		return err
	}
	// Wait for the first size report before resizing, so each stty sees one known size.
	deadline := time.After(60 * time.Second)
	for seen := ""; !strings.Contains(seen, "30 100"); {
		select {
		case seen = <-progress:
		case err := <-s.ended:
			return fmt.Errorf("ended early (%v): stdout %q", err, s.stdout.String())
		case <-deadline:
			return fmt.Errorf("no \"30 100\" from stty size within 60 s")
		}
	}
	if err := s.send(&drvpb.ExecTaskStreamingRequest{TtySize: &drvpb.ExecTaskStreamingRequest_TerminalSize{Height: 40, Width: 120}}); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	if err := s.send(&drvpb.ExecTaskStreamingRequest{Stdin: &drvpb.ExecTaskStreamingIOOperation{Data: []byte("typed\r")}}); err != nil {
		return err
	}
	if err := s.wait(60 * time.Second); err != nil {
		return err
	}
	out := s.stdout.String()
	for _, want := range []string{"is-a-tty", "30 100", "40 120", "got:typed"} {
		if !strings.Contains(out, want) {
			return fmt.Errorf("%q missing from the terminal output %q", want, out)
		}
	}
	if s.stderr.Len() != 0 || s.exitCode != 3 {
		return fmt.Errorf("stderr %q exit %d, want everything on stdout (TTY) and exit 3", s.stderr.String(), s.exitCode)
	}
	return nil
}

// The user goes away (the call is cancelled): the exec'd process must be killed (reference 6).
func execStreamingCancel(rt *Runtime, id string) error {
	marker := "exec-marker-" + randomHex(8)
	s, err := openExec(rt, id, []string{"/bin/sh", "-c", "echo started; while true; do sleep 0.1; done", marker}, false)
	if err != nil {
		return err
	}
	progress := make(chan string, 16)
	s.receive(progress)
	select {
	case <-progress:
	case err := <-s.ended:
		return fmt.Errorf("ended before any output: %v", err)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("no output within 60 s")
	}
	// Seen while the call runs (so the check below can fail), gone soon after the call is cancelled.
	if running, err := guestRuns(rt, id, marker); err != nil || !running {
		return fmt.Errorf("the exec'd process is not in the guest's process list while it runs (%v)", err)
	}
	s.cancel()
	<-s.ended
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		running, err := guestRuns(rt, id, marker)
		if err != nil {
			return err
		}
		if !running {
			return nil
		}
	}
	return fmt.Errorf("the exec'd process still runs 20 s after the call was cancelled")
}

// guestRuns tells whether a process whose command line contains marker runs in the guest.
func guestRuns(rt *Runtime, id, marker string) (bool, error) {
	list := []string{"/bin/sh", "-c", "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null; echo; done"}
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	ex, err := rt.Driver.ExecTask(ctx, &drvpb.ExecTaskRequest{TaskId: id, Command: list, Timeout: durationpb.New(20 * time.Second)})
	if err != nil {
		return false, fmt.Errorf("listing the guest's processes: %v", err)
	}
	return strings.Contains(string(ex.GetStdout()), marker), nil
}

// TaskStats at 500 ms: messages keep coming at about that pace, with plausible CPU and memory for a busy loop.
func checkStats(h *H, rt *Runtime, id string) error {
	ctx, cancel := ctxTimeout(60 * time.Second)
	defer cancel()
	stream, err := rt.Driver.TaskStats(ctx, &drvpb.TaskStatsRequest{TaskId: id, CollectionInterval: durationpb.New(500 * time.Millisecond)})
	if err != nil {
		return fmt.Errorf("TaskStats: %v", err)
	}
	var last *drvpb.TaskStats
	start := time.Now()
	const n = 5
	for i := 0; i < n; i++ {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("TaskStats message %d: %v", i+1, err)
		}
		last = resp.GetStats()
		if last.GetTimestamp() == nil || last.GetAggResourceUsage().GetCpu() == nil || last.GetAggResourceUsage().GetMemory() == nil {
			return fmt.Errorf("TaskStats message without timestamp/cpu/memory: %v", last)
		}
	}
	took := time.Since(start)
	cancel()
	cpu, mem := last.GetAggResourceUsage().GetCpu(), last.GetAggResourceUsage().GetMemory()
	h.Metric("stats_busy_loop", fmt.Sprintf("cpu=%.1f%% ticks=%.0fMHz rss=%d usage=%d interval=%v", cpu.GetPercent(),
		cpu.GetTotalTicks(), mem.GetRss(), mem.GetUsage(), (took/(n-1)).Round(time.Millisecond)))
	if took > 15*time.Second {
		return fmt.Errorf("%d TaskStats messages at a 500 ms interval took %v", n, took)
	}
	if cpu.GetPercent() < 20 || cpu.GetPercent() > 210 {
		return fmt.Errorf("a busy loop shows %.1f%% CPU (one core = 100%%)", cpu.GetPercent())
	}
	if cpu.GetTotalTicks() <= 0 || len(cpu.GetMeasuredFields()) == 0 || len(mem.GetMeasuredFields()) == 0 {
		return fmt.Errorf("TaskStats: ticks %v, measured fields %v / %v", cpu.GetTotalTicks(), cpu.GetMeasuredFields(), mem.GetMeasuredFields())
	}
	used := mem.GetRss()
	if used == 0 {
		used = mem.GetUsage()
	}
	if used < 64<<10 || used > taskMemoryMB<<20 {
		return fmt.Errorf("memory %d bytes is not plausible for a shell loop in a %d MiB VM", used, taskMemoryMB)
	}
	return nil
}
