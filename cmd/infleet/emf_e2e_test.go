package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/internal/emftest"
	"github.com/infleet/infleet/messages"
)

// TestServeWritesEMFToStdout runs the binary with telemetry.emf and checks that its stdout,
// once it stops, holds only CloudWatch Embedded Metric Format documents, counting the jobs of
// the task and the calls and tokens of the model; the logs stay on stderr.
func TestServeWritesEMFToStdout(t *testing.T) {
	runsTheBinary(t)
	bin := binary(t)
	cfgPath := writeConfig(t, `models: [{name: fast, provider: sim, latency: 5ms}]
routes: {default: fast}
telemetry: {emf: true}
log: {level: info}
`)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--data-dir", t.TempDir(), "--addr", addr)
	stdout, stderr := &lockedWriter{w: &strings.Builder{}}, &lockedWriter{w: &strings.Builder{}}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	h := &apiHarness{base: "http://" + addr, t: t}
	h.eventually(20*time.Second, func() bool {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for i := range 3 {
		h.waitStatus(h.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"emf job %d"}}`, i)), messages.StatusCompleted)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.w.String())
	}

	out := stdout.w.String()
	var task, model map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		doc, err := emftest.Check(sc.Bytes())
		if err != nil {
			t.Fatalf("stdout line is not an EMF document: %v\n%s", err, sc.Text())
		}
		if doc["Task"] == "summarize" {
			task = doc
		}
		if doc["Model"] == "fast" {
			model = doc
		}
	}
	if task == nil || task["JobsCompleted"] != 3.0 || task["JobsFailed"] != 0.0 {
		t.Errorf("task document %v in stdout:\n%s", task, out)
	}
	if model == nil || model["ModelCalls"] != 3.0 || model["OutputTokens"].(float64) <= 0 || len(model["ModelCallLatency"].([]any)) != 3 {
		t.Errorf("model document %v in stdout:\n%s", model, out)
	}
	if !strings.Contains(stderr.w.String(), "Embedded Metric Format") {
		t.Errorf("the logs on stderr do not say EMF is on:\n%s", stderr.w.String())
	}
}
