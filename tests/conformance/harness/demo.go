package main

// -demo: what a Nomad client learns from the plugin at agent start, printed for a person.

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	basepb "nfcproto/base"
	drvpb "nfcproto/drivers"
	"nfcproto/structs"
)

// renderAttribute shows a node attribute the way Nomad renders it (value, then unit).
func renderAttribute(a *structs.Attribute) string {
	var v string
	switch x := a.GetValue().(type) {
	case *structs.Attribute_StringVal:
		v = x.StringVal
	case *structs.Attribute_IntVal:
		v = strconv.FormatInt(x.IntVal, 10)
	case *structs.Attribute_BoolVal:
		v = strconv.FormatBool(x.BoolVal)
	case *structs.Attribute_FloatVal:
		v = strconv.FormatFloat(x.FloatVal, 'g', -1, 64)
	}
	return v + a.GetUnit()
}

func runDemo(pluginPath string) error {
	h, err := newH(pluginPath, "demo", false)
	if err != nil {
		return err
	}
	defer h.cleanup()
	fmt.Printf("Launching %s as a Nomad client would (go-plugin, magic cookie, gRPC over a unix socket)...\n", pluginPath)
	start := time.Now()
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("  handshake + connect: %v\n", time.Since(start).Round(time.Millisecond))
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	info, err := inst.Base.PluginInfo(ctx, &basepb.PluginInfoRequest{})
	if err != nil {
		return err
	}
	fmt.Printf("\nPluginInfo: type=%v name=%q version=%s api=%v\n", info.GetType(), info.GetName(),
		info.GetPluginVersion(), info.GetPluginApiVersions())
	schema, err := pluginSchema(inst)
	if err != nil {
		return err
	}
	fmt.Println("\nAgent plugin block options (ConfigSchema):")
	for _, line := range describeSchema(schema) {
		fmt.Println("  " + line)
	}
	tschema, err := taskSchema(inst)
	if err != nil {
		return err
	}
	fmt.Println("\nTask config options (TaskConfigSchema):")
	for _, line := range describeSchema(tschema) {
		fmt.Println("  " + line)
	}
	packed, _, err := EncodeConfig("", schema)
	if err != nil {
		return err
	}
	if err := setConfig(inst, packed, true); err != nil {
		return fmt.Errorf("SetConfig with an empty plugin block: %v", err)
	}
	fs, err := openFingerprint(inst)
	if err != nil {
		return err
	}
	fp, err := fs.next(10 * time.Second)
	fs.cancel()
	if err != nil {
		return err
	}
	fmt.Printf("\nFingerprint (empty plugin block): %v\n  %s\n", fp.GetHealth(), fp.GetHealthDescription())
	var keys []string
	for k := range fp.GetAttributes() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %s = %s\n", k, renderAttribute(fp.GetAttributes()[k]))
	}
	caps, err := inst.Driver.Capabilities(ctx, &drvpb.CapabilitiesRequest{})
	if err == nil {
		fmt.Printf("\nCapabilities: %v\n", caps.GetCapabilities())
	}
	took, err := inst.Kill(h)
	if err != nil {
		return err
	}
	fmt.Printf("\nKill (GRPCController.Shutdown -> exit): %v\n", took.Round(time.Millisecond))
	return nil
}
