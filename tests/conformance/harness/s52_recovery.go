package main

// Restarts (reference 1.9, 1.10, 5.9): the plugin process is SIGKILLed while the workload prints numbered lines;
// a fresh plugin instance gets SetConfig + Init and RecoverTask with the handle the client persisted; the VM must
// be the same (guest boot id), WaitTask must work again, and logmon's file must hold every line exactly once.
// Then the agent-crash path: the client connection is dropped without Shutdown and the live plugin is reattached
// by its ReattachConfig address. Guest scenarios (-lifecycle).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	basepb "nfcproto/base"
	drvpb "nfcproto/drivers"
)

func init() {
	register(
		Scenario{Name: "lifecycle-recovery-after-plugin-kill9-and-agent-crash", Guest: true, Timeout: 4 * time.Minute, Run: testRecovery},
		Scenario{Name: "lifecycle-restart-in-alloc-and-exit-while-plugin-down", Guest: true, Timeout: 3 * time.Minute, Run: testRestartAndExitWhileDown},
		Scenario{Name: "lifecycle-plugin-killed-during-start-leaves-no-vm", Guest: true, Timeout: 3 * time.Minute, Run: testKilledDuringStart},
		Scenario{Name: "lifecycle-bad-input-clear-errors-nothing-leaked", Guest: true, Timeout: 3 * time.Minute, Run: testBadInput},
	)
}

var bootIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// guestBootID asks the guest itself (ExecTask) which boot it is in.
func guestBootID(rt *Runtime, id string) (string, error) {
	ctx, cancel := ctxTimeout(60 * time.Second)
	defer cancel()
	ex, err := rt.Driver.ExecTask(ctx, &drvpb.ExecTaskRequest{TaskId: id, Command: []string{"cat", "/proc/sys/kernel/random/boot_id"},
		Timeout: durationpb.New(30 * time.Second)})
	if err != nil {
		return "", fmt.Errorf("ExecTask cat boot_id: %v", err)
	}
	return strings.TrimSpace(string(ex.GetStdout())), nil
}

// countLines returns how many "line N" lines the file holds.
func countLines(l *logmon) int { return strings.Count(l.Contents(), "\nline ") }

type waitOutcome struct {
	resp *drvpb.WaitTaskResponse
	err  error
}

// waitInBackground is the task runner's blocking WaitTask.
func waitInBackground(rt *Runtime, id string) chan waitOutcome {
	ch := make(chan waitOutcome, 1)
	go func() {
		r, err := rt.waitTask(id, 4*time.Minute)
		ch <- waitOutcome{r, err}
	}()
	return ch
}

func testRecovery(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	t, handle, err := h.startShell(rt, "counter",
		"cat /proc/sys/kernel/random/boot_id; i=0; while true; do i=$((i+1)); echo line $i; sleep 0.02; done")
	if err != nil {
		return err
	}
	id := t.Config.Id
	stored := persisted(handle) // what the client's state DB holds
	state, err := decodeDriverState(handle.GetDriverState())
	if err != nil {
		return err
	}
	if err := waitForOutput(t.Stdout, "line 1\n", 60*time.Second); err != nil {
		return err
	}
	bootID := strings.SplitN(t.Stdout.Contents(), "\n", 2)[0]
	if !bootIDPattern.MatchString(bootID) {
		return fmt.Errorf("the workload's first line %q is not a boot id", bootID)
	}
	taskProcs := len(processesMentioning(state.TaskDir)) // the shim and its VMM
	waiter := waitInBackground(rt, id)

	const kills = 3
	var recoverMs []string
	for k := 1; k <= kills; k++ {
		before := countLines(t.Stdout)
		pid := rt.client.ReattachConfig().Pid
		if k == 2 {
			// An agent restart instead of a crash: Shutdown, then go-plugin's Kill (GRPCController.Shutdown,
			// SIGKILL after 2 s). Tasks must keep running, and the pending WaitTask must not be answered with a
			// result (the client would take it for the task's exit).
			ctx, cancel := ctxTimeout(5 * time.Second)
			rt.Driver.Shutdown(ctx, &drvpb.ShutdownRequest{})
			cancel()
			if _, err := rt.Kill(h); err != nil {
				return fmt.Errorf("kill %d (graceful): %v", k, err)
			}
		} else if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill -9 plugin %d: %v", pid, err)
		}
		// The task runner's WaitTask fails (UNAVAILABLE after a crash): the client's cue to re-dispense and
		// recover (1.10).
		select {
		case w := <-waiter:
			if w.err == nil {
				return fmt.Errorf("kill %d: WaitTask on the stopping plugin answered %s while the task runs", k, describeExit(w.resp))
			}
			if k != 2 && status.Code(unwrap(w.err)) != codes.Unavailable {
				return fmt.Errorf("kill %d: WaitTask on the killed plugin returned %v, want UNAVAILABLE", k, w.err)
			}
		case <-time.After(30 * time.Second):
			return fmt.Errorf("kill %d: WaitTask on the killed plugin did not return", k)
		}
		time.Sleep(time.Second) // the workload keeps printing while no plugin runs
		if rt, err = h.launchRuntime(); err != nil {
			return fmt.Errorf("kill %d: relaunch: %v", k, err)
		}
		start := time.Now()
		ctx, cancel := ctxTimeout(60 * time.Second)
		_, err = rt.Driver.RecoverTask(ctx, &drvpb.RecoverTaskRequest{Handle: stored}) // task_id empty, as the client sends it
		cancel()
		if err != nil {
			return fmt.Errorf("kill %d: RecoverTask: %v", k, err)
		}
		recoverMs = append(recoverMs, strconv.FormatInt(time.Since(start).Milliseconds(), 10))
		if got, err := guestBootID(rt, id); err != nil || got != bootID {
			return fmt.Errorf("kill %d: guest boot id %q (%v), want %q: RecoverTask must reattach, never boot again", k, got, err, bootID)
		}
		if n := len(processesMentioning(state.TaskDir)); n != taskProcs {
			return fmt.Errorf("kill %d: %d processes of the task, was %d", k, n, taskProcs)
		}
		if err := waitForOutput(t.Stdout, fmt.Sprintf("line %d\n", before+20), 30*time.Second); err != nil {
			return fmt.Errorf("kill %d: output does not continue: %v", k, err)
		}
		waiter = waitInBackground(rt, id)
	}
	h.Metric("recover_task_ms", strings.Join(recoverMs, ","))

	// Agent crash: the client goes away without Shutdown; the next agent reattaches by address (1.9), calls
	// PluginInfo, no SetConfig, then Init/Fingerprint/TaskEvents and RecoverTask for the handle.
	rc := rt.client.ReattachConfig()
	rt.Conn.Close()
	rt.cancel()
	select {
	case <-waiter: // cancelled with the connection
	case <-time.After(10 * time.Second):
		return fmt.Errorf("WaitTask did not end with the client's connection")
	}
	time.Sleep(300 * time.Millisecond)
	inst, err := h.Reattach(&plugin.ReattachConfig{Protocol: rc.Protocol, Addr: rc.Addr, Pid: rc.Pid})
	if err != nil {
		return fmt.Errorf("reattach: %v", err)
	}
	ctx, cancel := ctxTimeout(10 * time.Second)
	_, err = inst.Base.PluginInfo(ctx, &basepb.PluginInfoRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("PluginInfo after reattach: %v", err)
	}
	if rt, err = h.attachRuntime(inst, true); err != nil {
		return fmt.Errorf("after reattach: %v", err)
	}
	for i := 0; i < 2; i++ { // idempotent: the plugin knows the task already
		ctx, cancel := ctxTimeout(60 * time.Second)
		_, err = rt.Driver.RecoverTask(ctx, &drvpb.RecoverTaskRequest{Handle: stored})
		cancel()
		if err != nil {
			return fmt.Errorf("RecoverTask #%d on the reattached plugin: %v", i+1, err)
		}
	}
	if got, err := guestBootID(rt, id); err != nil || got != bootID {
		return fmt.Errorf("after reattach: guest boot id %q (%v), want %q", got, err, bootID)
	}
	if n := len(processesMentioning(state.TaskDir)); n != taskProcs {
		return fmt.Errorf("after reattach: %d processes of the task, was %d (a second VM?)", n, taskProcs)
	}
	waiter = waitInBackground(rt, id)
	time.Sleep(time.Second)
	if err := rt.stopTask(id, 5*time.Second, "SIGTERM"); err != nil {
		return err
	}
	var res *drvpb.WaitTaskResponse
	select {
	case w := <-waiter:
		if w.err != nil {
			return w.err
		}
		res = w.resp
	case <-time.After(60 * time.Second):
		return fmt.Errorf("WaitTask did not return after StopTask")
	}
	if res.GetResult().GetSignal() != int32(syscall.SIGTERM) {
		return fmt.Errorf("after StopTask(SIGTERM): %s, want signal 15", describeExit(res))
	}

	// Every line exactly once.
	time.Sleep(200 * time.Millisecond)
	lines := strings.Split(strings.TrimSuffix(t.Stdout.Contents(), "\n"), "\n")
	if lines[0] != bootID {
		return fmt.Errorf("first line %q, want the boot id", lines[0])
	}
	bad, expected := 0, 1
	var firstBad string
	for i, l := range lines[1:] {
		if l != "line "+strconv.Itoa(expected) {
			bad++
			if firstBad == "" {
				firstBad = fmt.Sprintf("line %d of the file is %q, want %q", i+2, l, "line "+strconv.Itoa(expected))
			}
		}
		if n, err := strconv.Atoi(strings.TrimPrefix(l, "line ")); err == nil {
			expected = n + 1
		} else {
			expected++
		}
	}
	h.Metric("recovery_plugin_kills", kills)
	h.Metric("recovery_lines", len(lines)-1)
	h.Metric("recovery_lines_lost_or_duplicated", bad)
	if bad != 0 {
		return fmt.Errorf("%d lines lost or duplicated across %d plugin kills: %s", bad, kills, firstBad)
	}
	if len(lines)-1 < 100 {
		return fmt.Errorf("only %d lines: the workload did not keep printing", len(lines)-1)
	}
	if t.Stderr.Contents() != "" {
		return fmt.Errorf("unexpected stderr %q", t.Stderr.Contents())
	}
	if err := rt.destroyAndCheck(id, handle); err != nil {
		return err
	}
	took, err := inst.Kill(h)
	h.Metric("kill_reattached_runtime_ms", took.Milliseconds())
	return err
}

// The client restarts a task in its allocation (StopTask with the default signal, DestroyTask, StartTask with a
// new id on the same FIFOs); then the plugin dies, the task exits while no plugin runs, and RecoverTask of a fresh
// instance must give WaitTask the real result (reference 5.9).
func testRestartAndExitWhileDown(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	schema, err := taskSchema(rt.Instance)
	if err != nil {
		return err
	}
	first, err := h.newTaskWithSchema(schema, "web", taskHCL([]string{"/bin/sh", "-c",
		"echo run1 start; trap 'echo run1 stopping; exit 0' TERM; while true; do sleep 0.2; done"}, ""))
	if err != nil {
		return err
	}
	handle, _, err := rt.startTask(first)
	if err != nil {
		return err
	}
	if err := waitForOutput(first.Stdout, "run1 start\n", 60*time.Second); err != nil {
		return err
	}
	waiter := waitInBackground(rt, first.Config.Id)
	if err := rt.stopTask(first.Config.Id, 10*time.Second, ""); err != nil { // no kill_signal: the driver's default
		return err
	}
	select {
	case w := <-waiter:
		if w.err != nil || w.resp.GetResult().GetExitCode() != 0 || w.resp.GetResult().GetSignal() != 0 {
			return fmt.Errorf("StopTask with the default signal: %v %v, want the trap's clean exit", w.resp, w.err)
		}
	case <-time.After(60 * time.Second):
		return fmt.Errorf("WaitTask did not return after StopTask")
	}
	if err := rt.destroyAndCheck(first.Config.Id, handle); err != nil {
		return err
	}

	second, err := first.restarted(schema, taskHCL([]string{"/bin/sh", "-c",
		"echo run2; echo run2-err >&2; sleep 4; echo run2 done; exit 42"}, ""))
	if err != nil {
		return err
	}
	handle, _, err = rt.startTask(second)
	if err != nil {
		return fmt.Errorf("restart: %v", err)
	}
	stored := persisted(handle)
	if err := waitForOutput(second.Stdout, "run2\n", 60*time.Second); err != nil {
		return err
	}
	if err := syscall.Kill(rt.client.ReattachConfig().Pid, syscall.SIGKILL); err != nil {
		return err
	}
	if err := waitForOutput(second.Stdout, "run2 done\n", 60*time.Second); err != nil {
		return fmt.Errorf("the task did not go on without the plugin: %v", err)
	}
	state, err := decodeDriverState(handle.GetDriverState())
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for procAlive(state.Shim.Pid, state.TaskDir) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond) // the shim ends with the VM once the exit is recorded
	}
	if rt, err = h.launchRuntime(); err != nil {
		return err
	}
	ctx, cancel := ctxTimeout(60 * time.Second)
	_, err = rt.Driver.RecoverTask(ctx, &drvpb.RecoverTaskRequest{Handle: stored})
	cancel()
	if err != nil {
		return fmt.Errorf("RecoverTask of a task that exited while the plugin was down: %v", err)
	}
	res, err := rt.waitTask(second.Config.Id, time.Minute)
	if err != nil {
		return err
	}
	if res.GetResult().GetExitCode() != 42 || res.GetErr() != "" {
		return fmt.Errorf("WaitTask after recovering an exited task: %s, want exit 42", describeExit(res))
	}
	info, err := rt.inspectTask(second.Config.Id)
	if err != nil {
		return err
	}
	if info.GetTask().GetState() != drvpb.TaskState_EXITED || info.GetTask().GetResult().GetExitCode() != 42 {
		return fmt.Errorf("InspectTask after recovering an exited task: %v", info.GetTask())
	}
	if err := waitForExactOutput(second.Stdout, "run1 start\nrun1 stopping\nrun2\nrun2 done\n", 5*time.Second); err != nil {
		return fmt.Errorf("both runs' output in the alloc's log file: %v", err)
	}
	// StopTask's signal goes to the workload's process group: busybox sh reports its foreground `sleep` killed by
	// it ("Terminated") before the trap runs.
	if got := second.Stderr.Contents(); got != "run2-err\n" && got != "Terminated\nrun2-err\n" {
		return fmt.Errorf("stderr of both runs: %q, want \"run2-err\\n\" (after run1's \"Terminated\")", got)
	}
	if err := rt.destroyAndCheck(second.Config.Id, handle); err != nil {
		return err
	}
	if left := h.taskDirs(); len(left) > 0 {
		return fmt.Errorf("task dirs left: %v", left)
	}
	// The interrupted start's VMM cgroup (and the completed task's) went too (QEMU backend; none on Firecracker).
	for _, dir := range cgroupDirs(h.cgroupParent()) {
		if children, _ := filepath.Glob(dir + "/nfc-*"); len(children) > 0 {
			return fmt.Errorf("VMM cgroups left: %v", children)
		}
	}
	_, err = rt.Kill(h)
	return err
}

// The plugin dies while StartTask boots the VM (agent restart or plugin crash at the wrong moment). The client
// got no handle, so it will never call RecoverTask or DestroyTask for that task: the next runtime instance must
// remove the half-started VM by itself, and must leave a task whose start completed alone.
func testKilledDuringStart(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	keep, keepHandle, err := h.startShell(rt, "keep", "echo kept; while true; do sleep 1; done")
	if err != nil {
		return err
	}
	keepState, err := decodeDriverState(keepHandle.GetDriverState())
	if err != nil {
		return err
	}
	lost, err := h.newTask(rt.Instance, "lost", taskHCL([]string{"/bin/sh", "-c", "echo lost-started; while true; do sleep 1; done"}, ""))
	if err != nil {
		return err
	}
	startErr := make(chan error, 1)
	go func() {
		_, _, err := rt.startTask(lost)
		startErr <- err
	}()
	// Kill the plugin once the shim of the new task runs (the VM is booting).
	var lostDir string
	for deadline := time.Now().Add(60 * time.Second); lostDir == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, d := range h.taskDirs() {
			dir := filepath.Join(h.dataDir(), "tasks", d)
			if dir == keepState.TaskDir {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, "shim.pid")); err == nil {
				lostDir = dir
			}
		}
	}
	if lostDir == "" {
		return fmt.Errorf("the second task's shim did not appear")
	}
	if err := syscall.Kill(rt.client.ReattachConfig().Pid, syscall.SIGKILL); err != nil {
		return err
	}
	if err := <-startErr; err == nil {
		h.Metric("killed_during_start_note", "StartTask completed before the kill landed")
	}
	if len(processesMentioning(lostDir)) == 0 {
		return fmt.Errorf("no process of the half-started task to check (the shim was expected to outlive the plugin)")
	}
	// The next runtime instance (SetConfig, Init, Fingerprint, TaskEvents), then RecoverTask for the handle the
	// client has.
	if rt, err = h.launchRuntime(); err != nil {
		return err
	}
	ctx, cancel := ctxTimeout(60 * time.Second)
	_, err = rt.Driver.RecoverTask(ctx, &drvpb.RecoverTaskRequest{Handle: persisted(keepHandle)})
	cancel()
	if err != nil {
		return fmt.Errorf("RecoverTask of the completed task: %v", err)
	}
	var left []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		left = processesMentioning(lostDir)
		if _, err := os.Stat(lostDir); len(left) == 0 && err != nil {
			break
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("the VM of the StartTask interrupted by the plugin's death still runs 30 s after a new runtime instance started: %v", left)
	}
	if _, err := os.Stat(lostDir); err == nil {
		return fmt.Errorf("the task dir of the interrupted StartTask %s is still there", lostDir)
	}
	if !procAlive(keepState.Shim.Pid, keepState.TaskDir) {
		return fmt.Errorf("the completed task was removed too")
	}
	if err := waitForExactOutput(keep.Stdout, "kept\n", 5*time.Second); err != nil {
		return err
	}
	if err := rt.stopTask(keep.Config.Id, time.Second, "SIGKILL"); err != nil {
		return err
	}
	if err := rt.destroyAndCheck(keep.Config.Id, keepHandle); err != nil {
		return err
	}
	if left := h.taskDirs(); len(left) > 0 {
		return fmt.Errorf("task dirs left: %v", left)
	}
	// The interrupted start's VMM cgroup (and the completed task's) went too (QEMU backend; none on Firecracker).
	for _, dir := range cgroupDirs(h.cgroupParent()) {
		if children, _ := filepath.Glob(dir + "/nfc-*"); len(children) > 0 {
			return fmt.Errorf("VMM cgroups left: %v", children)
		}
	}
	_, err = rt.Kill(h)
	return err
}

// unwrap digs the gRPC status out of the harness's "WaitTask: ..." wrapping.
func unwrap(err error) error {
	type causer interface{ Unwrap() error }
	for {
		c, ok := err.(causer)
		if !ok {
			return err
		}
		err = c.Unwrap()
	}
}

// Bad input: each a clear error naming the thing, and nothing left behind (no task dir, no process).
func testBadInput(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	schema, err := taskSchema(rt.Instance)
	if err != nil {
		return err
	}
	type startCase struct {
		name, hcl string
		memoryMB  int64
		want      []string // all must appear in the error
	}
	wrongAuth := fmt.Sprintf("image = %q\nargs = [\"/bin/true\"]\nforce_pull = true\nauth {\n  username = %q\n  password = \"wrong\"\n}\n", guest.Image, guest.Username)
	cases := []startCase{
		{"noimage", fmt.Sprintf("image = %q\nauth {\n  username = %q\n  password = %q\n}\n",
			guest.Registry+"/does-not-exist:1", guest.Username, guest.Password), 0, []string{"does-not-exist"}},
		{"badauth", wrongAuth, 0, []string{guest.Registry}},
		{"hugemem", taskHCL([]string{"/bin/true"}, "mem_size = 4194304\n"), 0, []string{"mem_size", "4194304"}},
		{"hugenomadmem", taskHCL([]string{"/bin/true"}, ""), 1 << 24, []string{"memory"}},
	}
	var msgs []string
	for _, c := range cases {
		t, err := h.newTaskWithSchema(schema, c.name, c.hcl)
		if err != nil {
			return err
		}
		if c.memoryMB > 0 {
			t.Config.Resources.AllocatedResources.Memory.MemoryMb = c.memoryMB
			t.Config.Resources.LinuxResources.MemoryLimitBytes = c.memoryMB << 20
		}
		_, _, err = rt.startTask(t)
		if err == nil {
			return fmt.Errorf("%s: StartTask succeeded", c.name)
		}
		msg := status.Convert(unwrap(err)).Message()
		msgs = append(msgs, c.name+": "+msg)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				return fmt.Errorf("%s: the error %q does not name %q", c.name, msg, w)
			}
		}
		if left := h.taskDirs(); len(left) > 0 {
			return fmt.Errorf("%s: a failed StartTask left task dirs %v", c.name, left)
		}
		if left := leftProcesses(h.dataDir()); len(left) > 0 {
			return fmt.Errorf("%s: a failed StartTask left processes %v", c.name, left)
		}
		if t.Stdout.Contents() != "" || t.Stderr.Contents() != "" {
			return fmt.Errorf("%s: output from a task that never started", c.name)
		}
	}
	if strings.Contains(strings.Join(msgs, "\n"), guest.Password) {
		return fmt.Errorf("an error message shows the registry password: %v", msgs)
	}
	h.Metric("bad_input_errors", fmt.Sprintf("%q", msgs))

	// Malformed handles in RecoverTask: InvalidArgument naming the problem, no side effects.
	cfg := &drvpb.TaskConfig{Id: newUUID() + "/ghost/" + randomHex(8), Name: "ghost"}
	for _, hc := range []struct {
		state string
		want  string
	}{
		{"\x00\x01garbage", "driver state"},
		{`{"version": 99, "task_id": "x"}`, "version"},
		{`{"version": 1, "task_id": 5}`, "task_id"},
	} {
		ctx, cancel := ctxTimeout(30 * time.Second)
		_, err := rt.Driver.RecoverTask(ctx, &drvpb.RecoverTaskRequest{Handle: &drvpb.TaskHandle{Version: 1, Config: cfg, DriverState: []byte(hc.state)}})
		cancel()
		if err == nil {
			return fmt.Errorf("RecoverTask with driver_state %q succeeded", hc.state)
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), hc.want) {
			return fmt.Errorf("RecoverTask with driver_state %q: %v, want InvalidArgument naming %q", hc.state, err, hc.want)
		}
	}
	// The id is unknown afterwards: WaitTask errors, StopTask/DestroyTask are OK (reference 2.6).
	ctx, cancel := ctxTimeout(10 * time.Second)
	_, err = rt.Driver.WaitTask(ctx, &drvpb.WaitTaskRequest{TaskId: cfg.Id})
	cancel()
	if err == nil {
		return fmt.Errorf("WaitTask of a task that was never recovered succeeded")
	}
	if err := rt.stopTask(cfg.Id, time.Second, "SIGTERM"); err != nil {
		return fmt.Errorf("unknown task: %v", err)
	}
	if err := rt.destroyTask(cfg.Id); err != nil {
		return fmt.Errorf("unknown task: %v", err)
	}
	if left := h.taskDirs(); len(left) > 0 {
		return fmt.Errorf("task dirs left: %v", left)
	}
	// The interrupted start's VMM cgroup (and the completed task's) went too (QEMU backend; none on Firecracker).
	for _, dir := range cgroupDirs(h.cgroupParent()) {
		if children, _ := filepath.Glob(dir + "/nfc-*"); len(children) > 0 {
			return fmt.Errorf("VMM cgroups left: %v", children)
		}
	}
	_, err = rt.Kill(h)
	return err
}
