package sqlite_test

import (
	"fmt"
	"os"
	"testing"
)

// TestMigrationsAreNumberedInOrder: the store applies migration N as the N-th file in name
// order and records how many it applied, so the files must be numbered 0001, 0002, ... with no
// gap or repeat; two branches that each added "the next" migration fail here when merged.
func TestMigrationsAreNumberedInOrder(t *testing.T) {
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		var n int
		var rest string
		if _, err := fmt.Sscanf(e.Name(), "%04d_%s", &n, &rest); err != nil || n != i+1 {
			t.Errorf("migration %d in name order is %s, want it numbered %04d_", i+1, e.Name(), i+1)
		}
	}
}
