package main

// Nomad's task directories in a real guest (docs/task-files.md): a rendered template and a secret are there when
// the workload starts, /secrets is a tmpfs, every re-render is seen by the SIGHUP Nomad sends right after it
// (change_mode = "signal") and by an ExecTask (change_mode = "script"), and /alloc is shared both ways.

import (
	"errors"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	drvpb "nfcproto/drivers"
)

func init() {
	register(Scenario{Name: "task-dirs-templates-secrets-alloc", Guest: true, Timeout: 4 * time.Minute, Run: testTaskDirs})
}

// render replaces a file the way Nomad's template runner does: a temp file renamed over the old one.
func render(path, text string) error {
	if err := ioutil.WriteFile(path+".tmp", []byte(text), 0644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func testTaskDirs(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	script := "trap 'echo conf=$(cat /local/app.conf)' HUP; echo conf=$(cat /local/app.conf); echo token=$(cat /secrets/token);" +
		" grep ' /secrets ' /proc/mounts | cut -d' ' -f3; echo dir=$NOMAD_TASK_DIR,$NOMAD_SECRETS_DIR,$NOMAD_ALLOC_DIR;" +
		" echo from-vm > /alloc/data/vm.txt; echo ready; while true; do sleep 1; done"
	t, err := h.newTask(rt.Instance, "web", taskHCL([]string{"/bin/sh", "-c", script}, ""))
	if err != nil {
		return err
	}
	allocDir := t.Config.AllocDir
	conf := filepath.Join(allocDir, "web", "local", "app.conf")
	if err := render(conf, "v0"); err != nil {
		return err
	}
	secret := "s3cret-" + randomHex(16)
	if err := ioutil.WriteFile(filepath.Join(allocDir, "web", "secrets", "token"), []byte(secret), 0600); err != nil {
		return err
	}
	handle, _, err := rt.startTask(t)
	if err != nil {
		return err
	}
	id := t.Config.Id
	if err := waitForOutput(t.Stdout, "ready\n", 90*time.Second); err != nil {
		return err
	}
	want := "conf=v0\ntoken=" + secret + "\ntmpfs\ndir=/local,/secrets,/alloc\nready\n"
	if got := t.Stdout.Contents(); got != want {
		return fmt.Errorf("at start the workload printed %q, want %q", got, want)
	}
	// 20 rounds of back-to-back renders (Nomad may render twice before it signals): the SIGHUP sees the last.
	const rounds = 20
	start := time.Now()
	for i := 1; i <= rounds; i++ {
		if err := render(conf, fmt.Sprintf("v%d-draft", i)); err != nil {
			return err
		}
		if err := render(conf, fmt.Sprintf("v%d", i)); err != nil {
			return err
		}
		ctx, cancel := ctxTimeout(30 * time.Second)
		_, err := rt.Driver.SignalTask(ctx, &drvpb.SignalTaskRequest{TaskId: id, Signal: "SIGHUP"})
		cancel()
		if err != nil {
			return fmt.Errorf("SignalTask after render %d: %v", i, err)
		}
		line := fmt.Sprintf("conf=v%d\n", i)
		if err := waitForOutput(t.Stdout, line, 30*time.Second); err != nil {
			return fmt.Errorf("render %d: %v", i, err)
		}
		if strings.Count(t.Stdout.Contents(), "conf=") != i+1 || strings.Contains(t.Stdout.Contents(), "draft") {
			return fmt.Errorf("render %d: a SIGHUP printed a stale file: %q", i, t.Stdout.Contents())
		}
	}
	h.Metric("render_signal_seen_ms_avg", time.Since(start).Milliseconds()/rounds)

	// The plugin is killed (-9) between a render and the signal: the task's shim owns the mirror, so after
	// RecoverTask on a fresh plugin the SIGHUP still comes after the new file.
	if err := render(conf, "v-after-kill"); err != nil {
		return err
	}
	if err := syscall.Kill(rt.client.ReattachConfig().Pid, syscall.SIGKILL); err != nil {
		return err
	}
	if rt, err = h.launchRuntime(); err != nil {
		return err
	}
	ctx, cancel := ctxTimeout(60 * time.Second)
	_, err = rt.Driver.RecoverTask(ctx, &drvpb.RecoverTaskRequest{Handle: persisted(handle)})
	cancel()
	if err != nil {
		return fmt.Errorf("RecoverTask after the plugin was killed: %v", err)
	}
	ctx, cancel = ctxTimeout(30 * time.Second)
	_, err = rt.Driver.SignalTask(ctx, &drvpb.SignalTaskRequest{TaskId: id, Signal: "SIGHUP"})
	cancel()
	if err != nil {
		return fmt.Errorf("SignalTask on the recovering plugin: %v", err)
	}
	if err := waitForOutput(t.Stdout, "conf=v-after-kill\n", 30*time.Second); err != nil {
		return fmt.Errorf("after the plugin was killed between a render and a signal: %v", err)
	}
	if n := strings.Count(t.Stdout.Contents(), "conf="); n != rounds+2 {
		return fmt.Errorf("after the kill the SIGHUP printed a stale file: %q", t.Stdout.Contents())
	}

	// change_mode = "script": ExecTask sees the file rendered just before it.
	if err := render(conf, "v-script"); err != nil {
		return err
	}
	ctx, cancel = ctxTimeout(60 * time.Second)
	ex, err := rt.Driver.ExecTask(ctx, &drvpb.ExecTaskRequest{TaskId: id, Command: []string{"cat", "/local/app.conf"},
		Timeout: durationpb.New(30 * time.Second)})
	cancel()
	if err != nil || string(ex.GetStdout()) != "v-script" {
		return fmt.Errorf("ExecTask after a render: %v, stdout %q, want \"v-script\"", err, ex.GetStdout())
	}

	// /alloc both ways.
	vm := filepath.Join(allocDir, "alloc", "data", "vm.txt")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := ioutil.ReadFile(vm)
		if string(b) == "from-vm\n" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("what the VM wrote under /alloc/data did not reach %s (got %q)", vm, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ioutil.WriteFile(filepath.Join(allocDir, "alloc", "data", "sidecar.txt"), []byte("from-sidecar"), 0644); err != nil {
		return err
	}
	ctx, cancel = ctxTimeout(60 * time.Second)
	ex, err = rt.Driver.ExecTask(ctx, &drvpb.ExecTaskRequest{TaskId: id, Command: []string{"cat", "/alloc/data/sidecar.txt"},
		Timeout: durationpb.New(30 * time.Second)})
	cancel()
	if err != nil || string(ex.GetStdout()) != "from-sidecar" {
		return fmt.Errorf("the guest did not see another task's /alloc write: %v, stdout %q", err, ex.GetStdout())
	}
	if err := rt.stopTask(id, 5*time.Second, ""); err != nil {
		return err
	}
	// /secrets lived on a tmpfs in the guest: the secret never reached the task's scratch disk.
	state, err := decodeDriverState(handle.GetDriverState())
	if err != nil {
		return err
	}
	scratch := filepath.Join(state.TaskDir, "scratch.img")
	found, err := fileContains(scratch, secret)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("the secret was written to the scratch disk %s", scratch)
	}
	return rt.destroyAndCheck(id, handle)
}

// fileContains scans a (sparse) file for needle, reading only its data ranges.
func fileContains(path, needle string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	const seekData, seekHole = 3, 4
	buf := make([]byte, 1<<20)
	var pos int64
	for {
		data, err := f.Seek(pos, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return false, nil // no data past pos
		}
		if err != nil {
			return false, err
		}
		hole, err := f.Seek(data, seekHole)
		if err != nil {
			return false, err
		}
		// Each window starts len(needle)-1 bytes early, so a match across two reads is seen.
		for off := data; off < hole; off += int64(len(buf) - len(needle)) {
			n, err := f.ReadAt(buf, off)
			if n > 0 && strings.Contains(string(buf[:n]), needle) {
				return true, nil
			}
			if err != nil || int64(n) < int64(len(buf)) {
				break
			}
		}
		pos = hole
	}
}
