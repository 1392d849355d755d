package main

// Signals and concurrent instances (reference 1.1, 1.3): SIGINT (a Ctrl-C reaching the agent's process group) is
// ignored, SIGTERM stops the plugin cleanly, and the several instances an agent start launches run side by side.

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	basepb "nfcproto/base"
)

func init() {
	register(
		Scenario{Name: "sigint-ignored-sigterm-stops-cleanly", Run: testSignals},
		Scenario{Name: "concurrent-instances-and-side-effect-free-setconfig", Run: testConcurrentInstances},
	)
}

func testSignals(h *H) error {
	p, err := h.StartRaw(nil)
	if err != nil {
		return err
	}
	socket := strings.Split(strings.TrimSpace(p.Handshake), "|")[3]
	if err := p.Cmd.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := ctxTimeout(5 * time.Second)
	_, err = basepb.NewBasePluginClient(p.Conn).PluginInfo(ctx, &basepb.PluginInfoRequest{})
	cancel()
	if err != nil {
		p.Cmd.Process.Kill()
		p.Cmd.Wait()
		return fmt.Errorf("after SIGINT the plugin no longer answers: %v", err)
	}
	start := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- p.Cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(5 * time.Second):
		p.Cmd.Process.Kill()
		<-exited
		return fmt.Errorf("SIGTERM did not stop the plugin within 5 s")
	}
	h.Metric("sigterm_to_exit_ms", time.Since(start).Milliseconds())
	p.Conn.Close()
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		return fmt.Errorf("socket %s left behind after SIGTERM", socket)
	}
	return nil
}

// An agent start runs the fingerprint and validation instances while an older runtime instance may still serve;
// SetConfig must not create anything (it runs in all of them).
func testConcurrentInstances(h *H) error {
	const n = 3
	insts := make([]*Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			inst, err := h.Launch(LaunchOptions{})
			mu.Lock()
			insts[i], errs[i] = inst, err
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	dataDir := h.Dir + "/data-must-not-be-created"
	seen := map[string]bool{}
	for i, inst := range insts {
		addr := inst.client.ReattachConfig().Addr.String()
		if seen[addr] {
			return fmt.Errorf("two instances share the socket %s", addr)
		}
		seen[addr] = true
		schema, err := pluginSchema(inst)
		if err != nil {
			return err
		}
		packed, _, err := EncodeConfig(fmt.Sprintf("data_dir = %q\nkernel_path = %q\n", dataDir, h.Dir+"/vmlinux"), schema)
		if err != nil {
			return err
		}
		for j := 0; j < 2; j++ {
			if err := setConfig(inst, packed, i == n-1); err != nil {
				return fmt.Errorf("instance %d SetConfig: %v", i, err)
			}
		}
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		return fmt.Errorf("SetConfig created %s (it must be side-effect free): %v", dataDir, err)
	}
	for _, inst := range insts {
		if _, err := inst.Kill(h); err != nil {
			return err
		}
	}
	return nil
}
