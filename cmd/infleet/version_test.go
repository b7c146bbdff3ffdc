package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionCommand checks `infleet version` and `infleet --version` in a binary linked the way
// the Makefile links it (-X main.version, -X main.commit), and the fallbacks of a plain build.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("version = %d: %s", code, errOut.String())
	}
	// A test binary has no link-time values: the fallbacks show, and the Go version is real.
	for _, want := range []string{"infleet dev\n", "commit ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("version printed %q, want it to contain %q", out.String(), want)
		}
	}
	if code := run([]string{"version", "extra"}, &out, &errOut); code != exitUsage {
		t.Errorf("version extra = %d, want %d", code, exitUsage)
	}

	bin := filepath.Join(t.TempDir(), "infleet")
	ldflags := "-X main.version=v9.8.7 -X main.commit=0123456789abcdef0123456789abcdef01234567"
	if b, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, arg := range []string{"version", "--version"} {
		b, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("infleet %s: %v", arg, err)
		}
		want := "infleet v9.8.7\ncommit   0123456789abcdef0123456789abcdef01234567\ngo       " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
		if string(b) != want {
			t.Errorf("infleet %s printed\n%s\nwant\n%s", arg, b, want)
		}
	}
}

// TestVersionFromBuildInfo checks the fallbacks when nothing is set at link time: the module
// version of `go install ...@v1.2.3` and Go's VCS stamp.
func TestVersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	info := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		linkV, linkC string
		info         *debug.BuildInfo
		wantV, wantC string
	}{
		{"", "", info, "v1.2.3", "abc123-dirty"},
		{"v2.0.0", "def456", info, "v2.0.0", "def456"},
		{"", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", "unknown"},
		{"", "", nil, "dev", "unknown"},
	} {
		got := versionOf(tc.linkV, tc.linkC, tc.info)
		if got.Version != tc.wantV || got.Commit != tc.wantC || got.Go != runtime.Version() {
			t.Errorf("versionOf(%q, %q, %v) = %+v, want %s %s %s", tc.linkV, tc.linkC, tc.info != nil, got, tc.wantV, tc.wantC, runtime.Version())
		}
	}
}
