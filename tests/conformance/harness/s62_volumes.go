package main

// Volumes in a real guest (docs/volumes.md), as Nomad's client hands them over in TaskConfig.mounts and
// .devices: a directory host volume keeps its data across allocations (in the disk image the driver keeps in the
// directory), a block-device volume (a loop device this test makes) is mounted read-only and a write fails with
// EROFS, a device plugin's block device appears as a node, and a second read-write user of a volume in use gets
// a clear error before anything boots.

import (
	"fmt"
	"io/ioutil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	drvpb "nfcproto/drivers"
)

func init() {
	register(Scenario{Name: "volumes-host-dir-block-device-exclusive", Guest: true, Timeout: 5 * time.Minute, Run: testVolumes})
}

// loopDevice formats an ext4 image holding the given files and attaches it to a loop device; removed on cleanup.
func (h *H) loopDevice(files map[string]string) (string, error) {
	src := filepath.Join(h.Dir, "blockvol-src")
	if err := os.MkdirAll(src, 0755); err != nil {
		return "", err
	}
	for name, text := range files {
		if err := ioutil.WriteFile(filepath.Join(src, name), []byte(text), 0644); err != nil {
			return "", err
		}
	}
	image := filepath.Join(h.Dir, "blockvol.ext4")
	if out, err := exec.Command("truncate", "-s", "32M", image).CombinedOutput(); err != nil {
		return "", fmt.Errorf("truncate: %v: %s", err, out)
	}
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-d", src, image).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mke2fs: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", image).Output()
	if err != nil {
		return "", fmt.Errorf("losetup (loop devices are a prerequisite of this scenario): %v", err)
	}
	dev := strings.TrimSpace(string(out))
	h.OnCleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev, nil
}

func testVolumes(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	dataDir := filepath.Join(h.Dir, "host-volumes", "data")
	if err := os.MkdirAll(dataDir, 0755); err != nil {
		return err
	}
	loop, err := h.loopDevice(map[string]string{"hello.txt": "from-the-block-device"})
	if err != nil {
		return err
	}

	// First allocation: writes to the directory volume, reads the read-only block volume, sees the device.
	script := "echo run1 > /data/kept.txt; sync; echo data=$(grep ' /data ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1);" +
		" echo blk=$(cat /blk/hello.txt); touch /blk/new 2>&1 | grep -o 'Read-only file system';" +
		" echo dev=$(ls -l /dev/xvdb | cut -c1)$(dd if=/dev/xvdb bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1);" +
		" echo ready; while true; do sleep 1; done"
	first, err := h.newTask(rt.Instance, "db", taskHCL([]string{"/bin/sh", "-c", script}, `volume_size = "64MiB"`))
	if err != nil {
		return err
	}
	first.Config.Mounts = []*drvpb.Mount{
		{TaskPath: "/data", HostPath: dataDir},
		{TaskPath: "/blk", HostPath: loop, Readonly: true},
	}
	first.Config.Devices = []*drvpb.Device{{TaskPath: "/dev/xvdb", HostPath: loop, CgroupPermissions: "r"}}
	handle, _, err := rt.startTask(first)
	if err != nil {
		return err
	}
	if err := waitForOutput(first.Stdout, "ready\n", 90*time.Second); err != nil {
		return err
	}
	want := "data=ext4 rw\nblk=from-the-block-device\nRead-only file system\ndev=b 53 ef\nready\n"
	if got := first.Stdout.Contents(); got != want {
		return fmt.Errorf("the first allocation printed %q, want %q (stderr %q)", got, want, first.Stderr.Contents())
	}
	entries, err := ioutil.ReadDir(dataDir)
	if err != nil || len(entries) != 1 || entries[0].Name() != "nomad-firecracker.img" {
		return fmt.Errorf("the directory volume holds %v (%v), want only nomad-firecracker.img", entries, err)
	}

	// A second writer while the first runs: refused at once with a reason, and nothing is left of its start.
	second, err := h.newTask(rt.Instance, "db", taskHCL([]string{"/bin/sh", "-c", "echo should-not-run"}, ""))
	if err != nil {
		return err
	}
	second.Config.Mounts = []*drvpb.Mount{{TaskPath: "/data", HostPath: dataDir}}
	before := len(h.taskDirs())
	start := time.Now()
	_, _, err = rt.startTask(second)
	if err == nil || !strings.Contains(err.Error(), "in use by another VM") || !strings.Contains(err.Error(), "mounts[0] (/data)") {
		return fmt.Errorf("a second read-write user of a volume in use: %v, want an error naming mounts[0] (/data) and saying it is in use", err)
	}
	h.Metric("second_writer_refused_ms", time.Since(start).Milliseconds())
	if after := len(h.taskDirs()); after != before {
		return fmt.Errorf("the refused start left a task dir (%d before, %d after)", before, after)
	}

	if err := rt.stopTask(first.Config.Id, 5*time.Second, ""); err != nil {
		return err
	}
	if err := rt.destroyAndCheck(first.Config.Id, handle); err != nil {
		return err
	}

	// A later allocation, read-only this time, finds what the first one wrote.
	third, err := h.newTask(rt.Instance, "reader", taskHCL([]string{"/bin/sh", "-c",
		"cat /data/kept.txt; echo more >> /data/kept.txt 2>/dev/null || echo refused"}, ""))
	if err != nil {
		return err
	}
	third.Config.Mounts = []*drvpb.Mount{{TaskPath: "/data", HostPath: dataDir, Readonly: true}}
	handle, _, err = rt.startTask(third)
	if err != nil {
		return fmt.Errorf("the next allocation: %v", err)
	}
	res, err := rt.waitTask(third.Config.Id, 2*time.Minute)
	if err != nil {
		return err
	}
	if res.GetResult().GetExitCode() != 0 || res.GetErr() != "" {
		return fmt.Errorf("the reader: %s (stderr %q)", describeExit(res), third.Stderr.Contents())
	}
	if err := waitForExactOutput(third.Stdout, "run1\nrefused\n", 10*time.Second); err != nil {
		return fmt.Errorf("the data written by the first allocation: %v", err)
	}
	if err := rt.destroyAndCheck(third.Config.Id, handle); err != nil {
		return err
	}
	_, err = rt.Kill(h)
	return err
}
