package deploytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The kustomize that renders the overlays: built from its Go module at a pinned release (it
// builds with this repository's Go), into the user's cache, the first time a test needs it. One
// pinned renderer on every machine, nothing added to go.mod, and no dependence on which kubectl
// a machine happens to have (Debian's kubernetes-client is 1.20, whose kustomize predates the
// labels field and components that deploy/k8s uses).
const (
	kustomizeModule  = "sigs.k8s.io/kustomize/kustomize/v5"
	kustomizeVersion = "v5.8.1"
	// envKustomize names a kustomize binary to use instead (it must be v5).
	envKustomize = "INFLEET_KUSTOMIZE"
)

var (
	kustomizeOnce sync.Once
	kustomizePath string
	kustomizeErr  error
)

// kustomize returns the path of the pinned kustomize binary, installing it when absent; it fails
// t when it cannot.
func kustomize(t *testing.T) string {
	t.Helper()
	kustomizeOnce.Do(func() { kustomizePath, kustomizeErr = installKustomize() })
	if kustomizeErr != nil {
		t.Fatalf("kustomize: %v", kustomizeErr)
	}
	return kustomizePath
}

func installKustomize() (string, error) {
	if p := os.Getenv(envKustomize); p != "" {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory (set %s to a kustomize binary): %w", envKustomize, err)
	}
	dir := filepath.Join(cache, "infleet-tools", "kustomize-"+kustomizeVersion)
	bin := filepath.Join(dir, "kustomize")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go is not on PATH to build %s@%s: %w", kustomizeModule, kustomizeVersion, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Outside this module (its go.mod is not consulted), into a private bin directory: go install
	// writes the binary in one step, so a concurrent run sees it whole or not at all.
	cmd := exec.CommandContext(ctx, goBin, "install", kustomizeModule+"@"+kustomizeVersion)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", kustomizeModule, kustomizeVersion, err, out.String())
	}
	return bin, nil
}

// render builds the kustomization in dir with the pinned kustomize, with components (directories)
// added when given, and returns the rendered documents.
func render(t *testing.T, dir string, components ...string) []any {
	t.Helper()
	bin := kustomize(t)
	target, name := dir, rel(dir)
	if len(components) > 0 {
		// A kustomization of its own that takes the overlay and adds the components; kustomize
		// wants paths relative to it.
		tmp := t.TempDir()
		relTo := func(p string) string {
			abs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			r, err := filepath.Rel(tmp, abs)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		var k strings.Builder
		fmt.Fprintf(&k, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n", relTo(dir))
		for _, c := range components {
			fmt.Fprintf(&k, "  - %s\n", relTo(c))
			name += " + " + rel(c)
		}
		if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(k.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		target = tmp
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "build", target).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kustomize build %s: %v\n%s", name, err, ee.Stderr)
		}
		t.Fatalf("kustomize build %s: %v", name, err)
	}
	return decodeYAML(t, "kustomize build "+name, out)
}
