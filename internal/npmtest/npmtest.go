// Package npmtest installs npm packages that tests run against (API linters, mock servers, SDKs
// of other languages) into a per-user cache, once, and starts their programs.
//
// Packages are installed on first use into $INFLEET_NPM_CACHE, or the user's cache directory
// (os.UserCacheDir) under infleet-npm, in a directory named after the exact package list, so a
// later test run starts at once. When npm is absent it is installed from the distribution's
// packages (apt-get), as on a fresh CI machine. Concurrent test processes wait on a file lock
// rather than install twice. A failed install fails the test: a test that needs a tool never skips
// for want of it.
package npmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// EnvCache names the directory that holds installed packages instead of the user cache.
const EnvCache = "INFLEET_NPM_CACHE"

// installTimeout bounds one npm install (the first one on a machine downloads everything).
const installTimeout = 10 * time.Minute

// Install makes sure pkgs ("name@version", pinned: the cache is keyed by the list) are installed
// and returns the npm prefix directory they live in (installed without running their install
// scripts: the tools used here need none); their programs are in Bin(dir, name) and
// their modules in dir/node_modules. It fails t when they cannot be installed. Safe to call from
// parallel tests and test processes.
func Install(t testing.TB, pkgs ...string) string {
	t.Helper()
	dir, err := install(pkgs)
	if err != nil {
		t.Fatalf("npmtest: %v", err)
	}
	return dir
}

// Bin is the path of the program name installed under the prefix dir returned by Install.
func Bin(dir, name string) string { return filepath.Join(dir, "node_modules", ".bin", name) }

func install(pkgs []string) (string, error) {
	if len(pkgs) == 0 {
		return "", errors.New("no packages named")
	}
	root := os.Getenv(EnvCache)
	if root == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("no cache directory (set %s): %w", EnvCache, err)
		}
		root = filepath.Join(cache, "infleet-npm")
	}
	sorted := slices.Sorted(slices.Values(pkgs))
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	dir := filepath.Join(root, hex.EncodeToString(sum[:6]))
	stamp := filepath.Join(dir, ".installed")
	if _, err := os.Stat(stamp); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer unlock()
	if _, err := os.Stat(stamp); err == nil {
		return dir, nil // another process installed them while this one waited
	}
	if err := ensureNPM(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	args := append([]string{"install", "--ignore-scripts", "--no-audit", "--no-fund", "--no-save", "--loglevel=error", "--prefix", dir}, sorted...)
	cmd := exec.CommandContext(ctx, "npm", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm install %s into %s: %w\n%s", strings.Join(sorted, " "), dir, err, out.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "packages.txt"), []byte(strings.Join(sorted, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	return dir, os.WriteFile(stamp, nil, 0o644)
}

// ensureNPM installs node and npm from the distribution's packages when npm is not on PATH.
func ensureNPM() error {
	if _, err := exec.LookPath("npm"); err == nil {
		return nil
	}
	return AptInstall("nodejs", "npm")
}

// AptInstall installs Debian packages with apt-get (through sudo unless running as root), for
// tests whose tools are packaged by the distribution. It returns the command's output with any
// error.
func AptInstall(pkgs ...string) error {
	run := func(args ...string) error {
		if os.Geteuid() != 0 {
			args = append([]string{"sudo", "-n"}, args...)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("apt-get", "update", "-qq"); err != nil {
		return err
	}
	return run(append([]string{"apt-get", "install", "-y", "-qq"}, pkgs...)...)
}
