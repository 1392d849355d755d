// Command nfc-conformance drives the nomad-driver-firecracker binary exactly like a Nomad client agent does:
// go-plugin's client launches it with Nomad's handshake, configs are encoded from real HCL text with hcl/v2,
// hcldec and go-cty's msgpack using the schemas the plugin returns, and every scenario checks what the Nomad
// client relies on (reference nomad-plugin-protocol.md). Built offline from Debian's Go packages.
//
// Usage: nfc-conformance -plugin PATH [-run REGEXP] [-v]
//
//	nfc-conformance -plugin PATH -lifecycle  (only the Guest scenarios: real microVMs from a real registry;
//	                                          run inside tests/lifecycle's nfc-harness-env, see lifecycle.go)
//
//	nfc-conformance -plugin PATH -lifecycle -backend firecracker -fc-standin FAKE_FC -fc-spec SPEC.yaml
//	                                         (the same on the Firecracker backend, through the stand-in; firecracker.go)
//
//	nfc-conformance agent -config DIR      (as the agent of a NomadOS image: tests/nomados/nested_test.cc)
//
//	nfc-conformance -plugin PATH -demo       (launch, print PluginInfo/ConfigSchema/Fingerprint, exit)
//
// Adding scenarios: create sNN_<topic>.go with `func init() { register(Scenario{Name: ..., Run: ...}) }`.
// Files run in name order, scenarios in registration order.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"time"
)

func main() {
	// As /usr/bin/nomad of a NomadOS image, run as `nomad agent -config DIR` (nomados_agent.go).
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(nomadosAgent())
	}
	pluginPath := flag.String("plugin", "", "path of the nomad-driver-firecracker binary")
	runPattern := flag.String("run", "", "only run scenarios whose name matches this regular expression")
	skipPattern := flag.String("skip", "", "leave out scenarios whose name matches this regular expression")
	demo := flag.Bool("demo", false, "launch the plugin, print what a Nomad client learns from it, and exit")
	verbose := flag.Bool("v", false, "print the plugin's log lines")
	lifecycle := flag.Bool("lifecycle", false, "run only the scenarios that boot real guests (needs nfc-harness-env's environment)")
	flag.StringVar(&vmBackend, "backend", "qemu", "the VMM backend of the Guest scenarios: qemu, or firecracker (through -fc-standin)")
	flag.StringVar(&fcStandIn.Binary, "fc-standin", "", "with -backend firecracker: the Firecracker stand-in (fake-firecracker)")
	flag.StringVar(&fcStandIn.Spec, "fc-spec", "", "with -backend firecracker: the API spec (firecracker-api-vX.Y.Z.yaml) of the version it plays")
	flag.StringVar(&jailerStandIn, "jailer-standin", "", "with -backend firecracker: run Firecracker through this jailer stand-in (fake-jailer)")
	flag.Parse()
	if vmBackend != "qemu" && vmBackend != "firecracker" {
		fmt.Fprintf(os.Stderr, "nfc-conformance: -backend %q: expected qemu or firecracker\n", vmBackend)
		os.Exit(2)
	}
	if vmBackend == "firecracker" && (fcStandIn.Binary == "" || fcStandIn.Spec == "") {
		fmt.Fprintln(os.Stderr, "nfc-conformance: -backend firecracker needs -fc-standin and -fc-spec")
		os.Exit(2)
	}
	if *pluginPath == "" {
		fmt.Fprintln(os.Stderr, "nfc-conformance: -plugin is required")
		os.Exit(2)
	}
	if *demo {
		if err := runDemo(*pluginPath); err != nil {
			fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
			os.Exit(1)
		}
		return
	}
	var filter, skip *regexp.Regexp
	if *runPattern != "" {
		filter = regexp.MustCompile(*runPattern)
	}
	if *skipPattern != "" {
		skip = regexp.MustCompile(*skipPattern)
	}
	if *lifecycle {
		env, err := loadGuestEnv()
		if err != nil {
			fmt.Fprintf(os.Stderr, "nfc-conformance: -lifecycle: %v\n", err)
			os.Exit(2)
		}
		guest = env
	}
	os.Exit(runAll(*pluginPath, filter, skip, *verbose, *lifecycle))
}

func runAll(pluginPath string, filter, skip *regexp.Regexp, verbose, lifecycle bool) int {
	passed, failed := 0, 0
	var metrics []string
	for _, s := range scenarios {
		if (filter != nil && !filter.MatchString(s.Name)) || (skip != nil && skip.MatchString(s.Name)) {
			continue
		}
		if s.Guest != lifecycle {
			continue
		}
		h, err := newH(pluginPath, s.Name, verbose)
		if err == nil {
			err = h.prepareBackend()
		}
		if err != nil {
			fmt.Printf("FAIL %s: setting up: %v\n", s.Name, err)
			failed++
			continue
		}
		start := time.Now()
		err = runScenario(s, h)
		if err == nil {
			err = h.checkFirecrackerRequests()
		}
		h.cleanup()
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			fmt.Printf("FAIL %s (%v): %v\n", s.Name, took, err)
			if !verbose && h.logs != nil {
				fmt.Printf("---- plugin log of %s ----\n%s----\n", s.Name, h.logs.String())
			}
			failed++
		} else {
			fmt.Printf("ok   %s (%v)\n", s.Name, took)
			passed++
		}
		metrics = append(metrics, h.metrics...)
	}
	for _, m := range metrics {
		fmt.Println("metric " + m)
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// runScenario bounds each scenario's run time and turns panics into failures.
func runScenario(s Scenario, h *H) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- s.Run(h)
	}()
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	select {
	case err = <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("timed out after %v", timeout)
	}
}
