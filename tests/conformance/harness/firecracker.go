package main

// The Guest scenarios on the Firecracker backend (-backend firecracker): Firecracker cannot run on the machines
// this project is tested on (no usable KVM, not packaged), so the plugin's firecracker_path is a script that runs
// the project's Firecracker stand-in (tests/fake-firecracker): it serves Firecracker's API for the version it
// plays (-fc-spec), validates every request against that version's spec and Firecracker's state rules, and boots
// the configured VM in QEMU microvm, relaying Firecracker's hybrid vsock to the guest. The plugin, the shim and
// the backend do exactly what they would do with a real Firecracker; after each scenario every request the
// backend sent is checked (none refused as malformed, no answer outside the spec).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
)

var vmBackend = "qemu"

// fcStandIn: the stand-in binary and the API spec of the Firecracker version it plays.
var fcStandIn struct{ Binary, Spec string }

// jailerStandIn: the jailer stand-in (tests/fake-jailer); with it the plugin runs Firecracker through a jailer.
var jailerStandIn string

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (h *H) firecrackerRecord() string { return filepath.Join(h.Dir, "firecracker-requests.jsonl") }

// prepareBackend gives the plugin of a Firecracker scenario a KVM device to find: the fingerprint calls the
// firecracker backend unusable without /dev/kvm, which these machines lack, so NFC_KVM_DEVICE points it at a
// file of the scenario's (src/driver/host_probe.h). Nothing else in the plugin looks at KVM for Firecracker.
func (h *H) prepareBackend() error {
	if vmBackend != "firecracker" {
		return nil
	}
	kvm := filepath.Join(h.Dir, "kvm")
	if err := ioutil.WriteFile(kvm, nil, 0600); err != nil {
		return err
	}
	h.PluginEnv = append(h.PluginEnv, "NFC_KVM_DEVICE="+kvm)
	return nil
}

// backendHCL is the part of the plugin block that selects the backend (and, for Firecracker, writes the
// stand-in's wrapper script into the scenario's directory).
func (h *H) backendHCL() string {
	if vmBackend != "firecracker" {
		return "backend = \"qemu\"\n"
	}
	path := filepath.Join(h.Dir, "firecracker")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --spec %s --boot-qemu /usr/bin/qemu-system-x86_64 --vsock-relay 1024:nfc.agent --record %s \"$@\"\n",
		shellQuote(fcStandIn.Binary), shellQuote(fcStandIn.Spec), shellQuote(h.firecrackerRecord()))
	if err := ioutil.WriteFile(path, []byte(script), 0755); err != nil {
		// The plugin then refuses firecracker_path by name, which fails the scenario with this path in it.
		fmt.Fprintf(os.Stderr, "writing %s: %v\n", path, err)
	}
	hcl := fmt.Sprintf("backend = \"firecracker\"\nfirecracker_path = %q\n", path)
	if jailerStandIn != "" {
		hcl += fmt.Sprintf("jailer = true\njailer_path = %q\n", h.writeJailerStandIn())
	}
	return hcl
}

// writeJailerStandIn writes the jailer wrapper: the jailer stand-in does what Firecracker's jailer does (its own
// mount namespace, pivot_root into the chroot, device nodes, cgroup, uid/gid drop, new pid namespace), and then
// runs the copied "firecracker" script in the jail. Unlike Firecracker, that script and the stand-in it runs
// need a shell, shared libraries, QEMU, the spec and /proc (for ASan): these are bound into the jail read-only,
// and the request record writable; none of it is something the real jailer does.
func (h *H) writeJailerStandIn() string {
	record := h.firecrackerRecord()
	if f, err := os.OpenFile(record, os.O_CREATE|os.O_WRONLY, 0666); err == nil {
		f.Close()
		os.Chmod(record, 0666) // written by the VM's uid
	}
	args := []string{shellQuote(jailerStandIn), "--stand-in-proc"}
	for _, dir := range []string{"/usr", "/bin", "/lib", "/lib64", "/etc", "/dev/null",
		filepath.Dir(fcStandIn.Binary), filepath.Dir(fcStandIn.Spec)} {
		args = append(args, "--stand-in-bind", shellQuote(dir))
	}
	args = append(args, "--stand-in-bind-rw", shellQuote(record))
	path := filepath.Join(h.Dir, "jailer")
	script := "#!/bin/sh\nexec " + strings.Join(args, " ") + " \"$@\"\n"
	if err := ioutil.WriteFile(path, []byte(script), 0755); err != nil {
		fmt.Fprintf(os.Stderr, "writing %s: %v\n", path, err)
	}
	return path
}

// checkFirecrackerRequests fails a scenario whose backend sent Firecracker a request that the version played
// refuses as malformed, or that the stand-in answered outside the spec. Requests Firecracker refuses for the
// VM's state (SendCtrlAltDel to a guest that already ended, ...) are part of the scenario and pass.
func (h *H) checkFirecrackerRequests() error {
	if vmBackend != "firecracker" {
		return nil
	}
	f, err := os.Open(h.firecrackerRecord())
	if os.IsNotExist(err) {
		return nil // the scenario started no VM
	}
	if err != nil {
		return err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; scanner.Scan(); n++ {
		var call struct {
			Method, Path, Fault_Message string
			Status                      int
			Fake_Bug                    string
		}
		if err := json.Unmarshal(scanner.Bytes(), &call); err != nil {
			return fmt.Errorf("request record line %d: %v", n, err)
		}
		if call.Fake_Bug != "" {
			return fmt.Errorf("the Firecracker stand-in answered %s %s outside its spec: %s", call.Method, call.Path, call.Fake_Bug)
		}
		if call.Status >= 400 && (strings.Contains(call.Fault_Message, "deserializing") ||
			strings.Contains(call.Fault_Message, "Invalid request method") || strings.Contains(call.Fault_Message, "Invalid ID")) {
			return fmt.Errorf("the backend sent a request Firecracker refuses: %s %s: %s", call.Method, call.Path, call.Fault_Message)
		}
	}
	return scanner.Err()
}
