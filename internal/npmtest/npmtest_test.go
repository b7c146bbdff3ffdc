package npmtest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInstallUsesTheCache checks that an install whose stamp is present returns at once the
// directory keyed by the package list, whatever its order, without running npm; and that a
// cache miss with no npm to run is an error, not a silent pass.
func TestInstallUsesTheCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv(EnvCache, cache)
	t.Setenv("PATH", "") // no npm, no apt-get: a cache miss must fail
	if _, err := install(nil); err == nil {
		t.Error("install with no packages succeeded")
	}
	if _, err := install([]string{"b@2", "a@1"}); err == nil {
		t.Fatal("a cache miss without npm succeeded")
	}
	// The miss made the list's directory; mark it installed, as a finished npm install does.
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	stamped := 0
	for _, e := range entries {
		if e.IsDir() {
			if err := os.WriteFile(filepath.Join(cache, e.Name(), ".installed"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			stamped++
		}
	}
	if stamped != 1 {
		t.Fatalf("%d package directories in the cache, want 1", stamped)
	}
	got, err := install([]string{"a@1", "b@2"})
	if err != nil || filepath.Dir(got) != cache {
		t.Fatalf("install of the same list in another order: %q, %v; want the stamped directory in %s", got, err, cache)
	}
	if _, err := install([]string{"a@1"}); err == nil {
		t.Error("another package list was served from the first list's directory")
	}
	if Bin(got, "tool") != filepath.Join(got, "node_modules", ".bin", "tool") {
		t.Errorf("Bin = %s", Bin(got, "tool"))
	}
}
