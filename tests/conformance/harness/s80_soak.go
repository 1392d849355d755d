package main

// Soak and load (docs/reliability.md, "Soak and load"): the plugin killed (-9) again and again while the
// workload writes numbered lines (none lost, none twice), start/stop cycles that must not grow the plugin (open
// descriptors, threads, RSS) or the data dir, and tasks started and stopped together. `-soak` runs the long
// versions (200 cycles); the default counts keep CI short.

import (
	"bufio"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	drvpb "nfcproto/drivers"
)

var soak = flag.Bool("soak", false, "run the soak scenarios at full length (200 start/stop cycles)")

func init() {
	register(
		Scenario{Name: "soak-plugin-kill9-while-logging", Guest: true, Timeout: 6 * time.Minute, Run: testSoakKill9Logging},
		Scenario{Name: "soak-start-stop-cycles", Guest: true, Timeout: 60 * time.Minute, Run: testSoakCycles},
		Scenario{Name: "soak-concurrent-tasks", Guest: true, Timeout: 8 * time.Minute, Run: testSoakConcurrent},
	)
}

// processFigures are the plugin's counters that must not grow with the number of tasks it has served.
type processFigures struct{ fds, threads, rssKiB int }

func figuresOf(pid int) processFigures {
	f := processFigures{fds: fdCount(pid)}
	status, _ := ioutil.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "Threads:":
			f.threads, _ = strconv.Atoi(fields[1])
		case "VmRSS:":
			f.rssKiB, _ = strconv.Atoi(fields[1])
		}
	}
	return f
}

// filesBelow counts the entries under dir (the plugin's data dir: task dirs, cache files, records).
func filesBelow(dir string) int {
	n := 0
	filepath.Walk(dir, func(string, os.FileInfo, error) error { n++; return nil })
	return n
}

// checkNumbered reads a log file of lines "1".."want" and reports the first line out of order.
func checkNumbered(path string, want int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	next := 1
	for s.Scan() {
		n, err := strconv.Atoi(s.Text())
		if err != nil || n != next {
			return fmt.Errorf("line %d of %s is %q, want %d (a line lost or written twice)", next, path, s.Text(), next)
		}
		next++
	}
	if next-1 != want {
		return fmt.Errorf("%s has %d lines, want %d", path, next-1, want)
	}
	return nil
}

func testSoakKill9Logging(h *H) error {
	h.guestScenario()
	const kills = 20
	const lines = 1250000 // "1".."1250000": 9.9 MB
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	// 1250 bursts of 1000 lines with a pause between: the writing lasts through every kill below.
	script := "i=0; while [ $i -lt 1250 ]; do seq $((i*1000+1)) $((i*1000+1000)); i=$((i+1)); sleep 0.02; done"
	t, err := h.newTask(rt.Instance, "counter", taskHCL([]string{"/bin/sh", "-c", script}, ""))
	if err != nil {
		return err
	}
	handle, _, err := rt.startTask(t)
	if err != nil {
		return err
	}
	stored := persisted(handle)
	for k := 1; k <= kills; k++ {
		time.Sleep(300 * time.Millisecond)
		if err := syscall.Kill(rt.client.ReattachConfig().Pid, syscall.SIGKILL); err != nil {
			return err
		}
		if rt, err = h.launchRuntime(); err != nil {
			return fmt.Errorf("kill %d: %v", k, err)
		}
		ctx, cancel := ctxTimeout(60 * time.Second)
		_, err = rt.Driver.RecoverTask(ctx, &drvpb.RecoverTaskRequest{Handle: stored})
		cancel()
		if err != nil {
			return fmt.Errorf("kill %d: RecoverTask: %v", k, err)
		}
	}
	res, err := rt.waitTask(t.Config.Id, 4*time.Minute)
	if err != nil {
		return err
	}
	if res.GetResult().GetExitCode() != 0 || res.GetErr() != "" {
		return fmt.Errorf("the writer: %s", describeExit(res))
	}
	t.Stdout.Stop() // drains the FIFO into the file
	if err := checkNumbered(t.Stdout.file, lines); err != nil {
		return err
	}
	h.Metric("soak_kill9_cycles", kills)
	h.Metric("soak_kill9_lines", lines)
	if err := rt.destroyAndCheck(t.Config.Id, handle); err != nil {
		return err
	}
	_, err = rt.Kill(h)
	return err
}

func testSoakCycles(h *H) error {
	h.guestScenario()
	cycles := 10
	if *soak {
		cycles = 200
	}
	// In the sanitized test build ASan keeps freed memory in a quarantine (256 MiB by default), which grows RSS
	// whether or not anything leaks; without it RSS shows what the plugin keeps. (Other builds ignore it.)
	h.PluginEnv = append(h.PluginEnv, "ASAN_OPTIONS="+os.Getenv("ASAN_OPTIONS")+":quarantine_size_mb=0")
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	pid := rt.client.ReattachConfig().Pid
	var first processFigures
	var firstFiles int
	start := time.Now()
	for c := 1; c <= cycles; c++ {
		t, handle, err := h.startShell(rt, "cycle", "echo up; while true; do sleep 1; done")
		if err != nil {
			return fmt.Errorf("cycle %d: %v", c, err)
		}
		if err := waitForOutput(t.Stdout, "up\n", 90*time.Second); err != nil {
			return fmt.Errorf("cycle %d: %v", c, err)
		}
		if err := rt.stopTask(t.Config.Id, 5*time.Second, ""); err != nil {
			return fmt.Errorf("cycle %d: %v", c, err)
		}
		if err := rt.destroyAndCheck(t.Config.Id, handle); err != nil {
			return fmt.Errorf("cycle %d: %v", c, err)
		}
		t.Stdout.Stop()
		t.Stderr.Stop()
		if c == 1 { // after the first cycle: the image is cached and every pool the plugin keeps exists
			first, firstFiles = figuresOf(pid), filesBelow(h.dataDir())
		}
	}
	last, lastFiles := figuresOf(pid), filesBelow(h.dataDir())
	h.Metric("soak_cycles", cycles)
	h.Metric("soak_cycle_s_avg", fmt.Sprintf("%.1f", time.Since(start).Seconds()/float64(cycles)))
	h.Metric("soak_plugin_fds", fmt.Sprintf("%d->%d", first.fds, last.fds))
	h.Metric("soak_plugin_threads", fmt.Sprintf("%d->%d", first.threads, last.threads))
	h.Metric("soak_plugin_rss_kib", fmt.Sprintf("%d->%d", first.rssKiB, last.rssKiB))
	h.Metric("soak_data_dir_entries", fmt.Sprintf("%d->%d", firstFiles, lastFiles))
	if last.fds > first.fds || last.threads > first.threads || lastFiles > firstFiles {
		return fmt.Errorf("after %d cycles the plugin grew: fds %d->%d, threads %d->%d, data dir entries %d->%d",
			cycles, first.fds, last.fds, first.threads, last.threads, firstFiles, lastFiles)
	}
	// RSS moves with the allocator; a leak per task would show as growth with the cycle count.
	if last.rssKiB > first.rssKiB+8*1024 {
		return fmt.Errorf("the plugin's RSS grew from %d to %d KiB over %d cycles", first.rssKiB, last.rssKiB, cycles)
	}
	_, err = rt.Kill(h)
	return err
}

func testSoakConcurrent(h *H) error {
	h.guestScenario()
	const n = 8
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	tasks := make([]*nomadTask, n)
	handles := make([]*drvpb.TaskHandle, n)
	errs := make([]error, n)
	for i := range tasks {
		script := fmt.Sprintf("echo task-%d; while true; do sleep 1; done", i)
		if tasks[i], err = h.newTask(rt.Instance, fmt.Sprintf("t%d", i), taskHCL([]string{"/bin/sh", "-c", script}, "")); err != nil {
			return err
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if handles[i], _, errs[i] = rt.startTask(tasks[i]); errs[i] == nil {
				errs[i] = waitForOutput(tasks[i].Stdout, fmt.Sprintf("task-%d\n", i), 3*time.Minute)
			}
		}(i)
	}
	wg.Wait()
	h.Metric("soak_concurrent_tasks", n)
	h.Metric("soak_concurrent_all_running_s", int(time.Since(start).Seconds()))
	for i, e := range errs {
		if e != nil {
			return fmt.Errorf("task %d of %d started together: %v", i, n, e)
		}
	}
	for i := range tasks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = rt.stopTask(tasks[i].Config.Id, 5*time.Second, "")
		}(i)
	}
	wg.Wait()
	for i := range tasks {
		if errs[i] != nil {
			return fmt.Errorf("stopping task %d: %v", i, errs[i])
		}
		if err := rt.destroyAndCheck(tasks[i].Config.Id, handles[i]); err != nil {
			return err
		}
	}
	if left := h.taskDirs(); len(left) > 0 {
		return fmt.Errorf("task dirs left: %v", left)
	}
	_, err = rt.Kill(h)
	return err
}
