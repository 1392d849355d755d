package main

// Agent crash and reattach (reference 1.9): the client stores ReattachConfig, dies without killing the plugin, and
// the next agent dials the same socket, calls PluginInfo (no SetConfig), Fingerprint, ... The plugin must treat
// the vanished client's cancelled streams as normal and keep serving.

import (
	"fmt"
	"time"

	basepb "nfcproto/base"
)

func init() {
	register(Scenario{Name: "reattach-after-agent-crash", Run: testReattach})
}

func testReattach(h *H) error {
	first, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	if err := setConfig(first, []byte{0x80}, true); err != nil {
		return err
	}
	fs, err := openFingerprint(first)
	if err != nil {
		return err
	}
	if _, err := fs.next(5 * time.Second); err != nil {
		return err
	}
	rc := first.client.ReattachConfig()
	if rc == nil || rc.Addr == nil || rc.Pid == 0 {
		return fmt.Errorf("no usable ReattachConfig: %+v", rc)
	}
	// The agent crashes: its connection goes away without GRPCController.Shutdown.
	first.Conn.Close()
	fs.cancel()
	time.Sleep(300 * time.Millisecond)

	for round := 1; round <= 2; round++ {
		second, err := h.Reattach(rc)
		if err != nil {
			return fmt.Errorf("reattach #%d: %v", round, err)
		}
		ctx, cancel := ctxTimeout(5 * time.Second)
		info, err := second.Base.PluginInfo(ctx, &basepb.PluginInfoRequest{})
		cancel()
		if err != nil || info.GetName() != "firecracker" {
			return fmt.Errorf("PluginInfo after reattach #%d: %v %v", round, info, err)
		}
		fs2, err := openFingerprint(second)
		if err != nil {
			return err
		}
		if _, err := fs2.next(5 * time.Second); err != nil {
			return fmt.Errorf("Fingerprint after reattach #%d: %v", round, err)
		}
		if round == 1 {
			// Crash again: drop this client too.
			second.Conn.Close()
			fs2.cancel()
			continue
		}
		took, err := second.Kill(h)
		h.Metric("kill_reattached_instance_ms", took.Milliseconds())
		return err
	}
	return nil
}
