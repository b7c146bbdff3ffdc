package main

import (
	"os"
	"os/exec"
	"testing"
)

// runsTheBinary marks t as a test that builds and runs the infleet binary: it skips t under
// -short and otherwise marks it parallel. Tests call it first, or right after the checks that
// skip them for a missing peer.
func runsTheBinary(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
}

// e2e is what the infleet processes of one end-to-end test have in common: the built binary,
// the config file they read, the data dir they share, the environment entries each gets and
// the address a restarted `infleet serve` keeps.
type e2e struct {
	t       *testing.T
	bin     string
	cfgPath string
	// dataDir is shared by every process started through the e2e; "" gives each process a
	// fresh data dir of its own.
	dataDir string
	// addr is a free address kept for the process a test kills and starts again where its
	// clients expect it: serve listens there, and startAt(role, addr) for another role.
	addr string
	env  []string
}

// newE2E builds the binary (once per test run), writes cfgYAML to a config file and makes a
// data dir that every process started through the result shares; env is added to each
// process's environment. It neither skips under -short nor marks t parallel: tests call
// runsTheBinary for that, before they start any peer.
func newE2E(t *testing.T, cfgYAML string, env ...string) *e2e {
	t.Helper()
	return &e2e{t: t, bin: binary(t), cfgPath: writeConfig(t, cfgYAML), dataDir: t.TempDir(), addr: freeAddr(t), env: env}
}

// newAWSE2E is newE2E for a fleet on the AWS emulators: each process gets INFLEET_AWS_ENDPOINT
// set to endpoint and a data dir of its own, and `infleet init` has created the config's queues,
// table and buckets before it returns.
func newAWSE2E(t *testing.T, endpoint, cfgYAML string) *e2e {
	t.Helper()
	f := newE2E(t, cfgYAML, "INFLEET_AWS_ENDPOINT="+endpoint)
	f.dataDir = ""
	f.init()
	return f
}

// init runs `infleet init` on the config, with the e2e's environment and a fresh data dir, and
// returns what it printed; it fails the test when init fails.
func (f *e2e) init() string {
	f.t.Helper()
	cmd := exec.Command(f.bin, "init", "--config", f.cfgPath, "--data-dir", f.t.TempDir())
	cmd.Env = append(os.Environ(), f.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("init: %v\n%s", err, out)
	}
	return string(out)
}

// start starts `infleet ROLE` (ingress or worker) on a free address with env added after the
// e2e's own, and waits until its /readyz answers, as startRoleAt does.
func (f *e2e) start(role string, env ...string) *child {
	f.t.Helper()
	return f.startAt(role, freeAddr(f.t), env...)
}

// startAt is start listening on addr, for a process restarted where clients expect it.
func (f *e2e) startAt(role, addr string, env ...string) *child {
	f.t.Helper()
	dataDir := f.dataDir
	if dataDir == "" {
		dataDir = f.t.TempDir()
	}
	return startRoleAt(f.t, f.bin, role, addr, dataDir, f.cfgPath, append(append([]string(nil), f.env...), env...)...)
}

// serve starts `infleet serve` at the e2e's address, the same for each call, and waits until
// it is ready: a test kills it and calls serve again to restart it on the same data dir.
func (f *e2e) serve() *child {
	f.t.Helper()
	return f.startAt("serve", f.addr)
}
