package config

import (
	"strings"
	"testing"
)

func TestHeapFloor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		want uint64
	}{
		{"unset is 64 MiB", "", nil, 64 << 20},
		{"set", "runtime: {heap_floor_bytes: 134217728}", nil, 128 << 20},
		{"0 turns it off", "runtime: {heap_floor_bytes: 0}", nil, 0},
		{"environment 0 turns it off", "", []string{"INFLEET_RUNTIME_HEAP_FLOOR_BYTES=0"}, 0},
		{"environment sets it", "", []string{"INFLEET_RUNTIME_HEAP_FLOOR_BYTES=33554432"}, 32 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(writeConfig(t, tc.yaml), tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Runtime.HeapFloor(); got != tc.want {
				t.Errorf("HeapFloor() = %d, want %d", got, tc.want)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	_, err := Load(writeConfig(t, "runtime: {heap_floor_bytes: -1}"), nil)
	if err == nil || !strings.Contains(err.Error(), "heap_floor_bytes") {
		t.Errorf("a negative floor loads with error %v, want one naming runtime.heap_floor_bytes", err)
	}
}
