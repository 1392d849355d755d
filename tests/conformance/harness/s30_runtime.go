package main

// The runtime instance (reference 1.1, 5.13, 5.11, 5.2): SetConfig with nomad_config, Init, Fingerprint (first
// message at once, then periodic, never ending), TaskEvents (open), TaskConfigSchema, Capabilities, lifecycle
// RPCs not built yet answer UNIMPLEMENTED, and Kill stays fast with all streams open.

import (
	"context"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	drvpb "nfcproto/drivers"
)

func init() {
	register(
		Scenario{Name: "runtime-instance-healthy-fingerprint", Run: testRuntimeHealthy},
		Scenario{Name: "runtime-instance-unhealthy-without-kernel", Run: testRuntimeUnhealthy},
		Scenario{Name: "capabilities-claim-only-what-works", Run: testCapabilities},
	)
}

// fakeGuest writes a stand-in VMM binary and guest files, so health does not depend on this machine.
func fakeGuest(h *H) (qemu, kernel, initrd string, err error) {
	qemu = filepath.Join(h.Dir, "qemu-system-x86_64")
	kernel = filepath.Join(h.Dir, "vmlinux")
	initrd = filepath.Join(h.Dir, "initramfs.cpio.gz")
	if err = ioutil.WriteFile(qemu, []byte("#!/bin/sh\necho 'QEMU emulator version 7.2.15 (fake for tests)'\n"), 0755); err != nil {
		return
	}
	if err = ioutil.WriteFile(kernel, []byte("not really a kernel"), 0644); err != nil {
		return
	}
	err = ioutil.WriteFile(initrd, []byte("not really an initramfs"), 0644)
	return
}

type fingerprintStream struct {
	ch     chan *drvpb.FingerprintResponse
	errCh  chan error
	cancel context.CancelFunc
}

func openFingerprint(inst *Instance) (*fingerprintStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := inst.Driver.Fingerprint(ctx, &drvpb.FingerprintRequest{})
	if err != nil {
		cancel()
		return nil, err
	}
	fs := &fingerprintStream{ch: make(chan *drvpb.FingerprintResponse, 16), errCh: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				fs.errCh <- err
				return
			}
			fs.ch <- resp
		}
	}()
	return fs, nil
}

func (fs *fingerprintStream) next(timeout time.Duration) (*drvpb.FingerprintResponse, error) {
	select {
	case r := <-fs.ch:
		return r, nil
	case err := <-fs.errCh:
		return nil, fmt.Errorf("Fingerprint stream ended: %v", err)
	case <-time.After(timeout):
		return nil, fmt.Errorf("no Fingerprint message within %v", timeout)
	}
}

func attrString(resp *drvpb.FingerprintResponse, key string) (string, bool) {
	a, ok := resp.GetAttributes()[key]
	if !ok {
		return "", false
	}
	return a.GetStringVal(), true
}

func testRuntimeHealthy(h *H) error {
	qemu, kernel, initrd, err := fakeGuest(h)
	if err != nil {
		return err
	}
	inst, err := h.Launch(LaunchOptions{Args: []string{"--fingerprint-period=1"}})
	if err != nil {
		return err
	}
	schema, err := pluginSchema(inst)
	if err != nil {
		return err
	}
	packed, _, err := EncodeConfig(fmt.Sprintf("backend = \"qemu\"\nqemu_path = %q\nkernel_path = %q\ninitrd_path = %q\ndata_dir = %q\n",
		qemu, kernel, initrd, filepath.Join(h.Dir, "data")), schema)
	if err != nil {
		return err
	}
	if err := setConfig(inst, packed, true); err != nil {
		return fmt.Errorf("SetConfig (runtime): %v", err)
	}
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	if _, err := inst.Driver.Init(ctx, &drvpb.InitRequest{}); err != nil && status.Code(err) != codes.Unimplemented {
		return fmt.Errorf("Init: %v", err)
	}
	start := time.Now()
	fs, err := openFingerprint(inst)
	if err != nil {
		return err
	}
	defer fs.cancel()
	first, err := fs.next(5 * time.Second)
	if err != nil {
		return err
	}
	h.Metric("first_fingerprint_ms", time.Since(start).Milliseconds())
	if first.GetHealth() != drvpb.FingerprintResponse_HEALTHY {
		return fmt.Errorf("health %v (%q), want HEALTHY with a VMM and guest kernel present", first.GetHealth(), first.GetHealthDescription())
	}
	for key, want := range map[string]string{
		"driver.firecracker.backend": "qemu", "driver.firecracker.vmm.version": "7.2.15",
	} {
		got, ok := attrString(first, key)
		if !ok || got != want {
			return fmt.Errorf("attribute %s = %q, want %s (all: %v)", key, got, want, first.GetAttributes())
		}
	}
	for _, key := range []string{"driver.firecracker.kvm", "driver.firecracker.version"} {
		if _, ok := first.GetAttributes()[key]; !ok {
			return fmt.Errorf("attribute %s missing (all: %v)", key, first.GetAttributes())
		}
	}
	// Periodic: another message within the configured period (1 s), and the stream stays open.
	if _, err := fs.next(4 * time.Second); err != nil {
		return fmt.Errorf("second fingerprint: %v", err)
	}

	// TaskEvents: stays open without sending anything while no task runs.
	evCtx, evCancel := context.WithCancel(context.Background())
	defer evCancel()
	events, err := inst.Driver.TaskEvents(evCtx, &drvpb.TaskEventsRequest{})
	if err != nil {
		return fmt.Errorf("TaskEvents: %v", err)
	}
	evErr := make(chan error, 1)
	go func() {
		_, err := events.Recv()
		evErr <- err
	}()
	select {
	case err := <-evErr:
		return fmt.Errorf("TaskEvents ended early: %v", err)
	case <-time.After(300 * time.Millisecond):
	}

	// Kill with Fingerprint, TaskEvents and the broker stream open: the runtime instance at agent shutdown.
	took, err := inst.Kill(h)
	h.Metric("kill_runtime_instance_with_streams_ms", took.Milliseconds())
	if err != nil {
		return err
	}
	if took >= 2*time.Second {
		return fmt.Errorf("Kill took %v", took)
	}
	select {
	case err := <-evErr:
		if err == io.EOF {
			return nil
		}
	case <-time.After(3 * time.Second):
		return fmt.Errorf("TaskEvents still open after the plugin exited")
	}
	return nil
}

func testRuntimeUnhealthy(h *H) error {
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	schema, err := pluginSchema(inst)
	if err != nil {
		return err
	}
	missing := filepath.Join(h.Dir, "no-such-vmlinux")
	packed, _, err := EncodeConfig(fmt.Sprintf("kernel_path = %q\n", missing), schema)
	if err != nil {
		return err
	}
	if err := setConfig(inst, packed, true); err != nil {
		return err
	}
	fs, err := openFingerprint(inst)
	if err != nil {
		return err
	}
	defer fs.cancel()
	first, err := fs.next(5 * time.Second)
	if err != nil {
		return err
	}
	if first.GetHealth() != drvpb.FingerprintResponse_UNHEALTHY {
		return fmt.Errorf("health %v, want UNHEALTHY without a guest kernel", first.GetHealth())
	}
	desc := first.GetHealthDescription()
	if !strings.Contains(desc, missing) || !strings.Contains(desc, "kernel_path") {
		return fmt.Errorf("description %q should name the missing file and the option to set", desc)
	}
	_, err = inst.Kill(h)
	if _, statErr := os.Stat(missing); statErr == nil {
		return fmt.Errorf("fingerprinting created %s", missing)
	}
	return err
}

func testCapabilities(h *H) error {
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	resp, err := inst.Driver.Capabilities(ctx, &drvpb.CapabilitiesRequest{})
	if err != nil {
		return err
	}
	caps := resp.GetCapabilities()
	if caps == nil {
		return fmt.Errorf("capabilities unset (the client needs them)")
	}
	if caps.GetFsIsolation() != drvpb.DriverCapabilities_IMAGE {
		return fmt.Errorf("fs_isolation %v, want IMAGE", caps.GetFsIsolation())
	}
	if caps.GetMustCreateNetwork() {
		return fmt.Errorf("must_create_network claimed")
	}
	// Until the lifecycle exists, nothing task-related may be claimed, and lifecycle calls say so.
	// Probe the lifecycle with WaitTask on an unknown task: no side effects whatever the implementation.
	_, probeErr := inst.Driver.WaitTask(ctx, &drvpb.WaitTaskRequest{TaskId: "no/such/task"})
	if status.Code(probeErr) == codes.Unimplemented {
		if caps.GetSendSignals() || caps.GetExec() || caps.GetMountConfigs() != drvpb.DriverCapabilities_NO_MOUNTS {
			return fmt.Errorf("claims signals/exec/mounts while StartTask is unimplemented: %v", caps)
		}
		if !strings.Contains(status.Convert(probeErr).Message(), "WaitTask") {
			return fmt.Errorf("UNIMPLEMENTED without a message naming the call: %v", probeErr)
		}
		for name, call := range map[string]func() error{
			"StopTask": func() error {
				_, e := inst.Driver.StopTask(ctx, &drvpb.StopTaskRequest{TaskId: "a/b/c"})
				return e
			},
			"InspectTask": func() error {
				_, e := inst.Driver.InspectTask(ctx, &drvpb.InspectTaskRequest{TaskId: "a/b/c"})
				return e
			},
		} {
			if err := call(); status.Code(err) != codes.Unimplemented {
				return fmt.Errorf("%s: %v, want Unimplemented", name, err)
			}
		}
	}
	_, err = inst.Kill(h)
	return err
}
