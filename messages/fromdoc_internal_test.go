package messages

import (
	"encoding/json"
	"testing"
)

// TestWholeNumber checks which numbers params.max_tokens takes: whole numbers however written,
// nothing fractional or too large for an int, and an exponent too large to compute is refused
// rather than computed (exactly, 1e999999999 would take gigabytes).
func TestWholeNumber(t *testing.T) {
	for text, want := range map[string]int{"12": 12, "12.0": 12, "1.2E1": 12, "1E0": 1, "1000e-3": 1, "0": 0} {
		if got, ok := wholeNumber(json.Number(text)); !ok || got != want {
			t.Errorf("%s: %d, %v; want %d", text, got, ok, want)
		}
	}
	for _, text := range []string{"1.5", "1e-3", "99999999999999999999999", "1e999999999", "1e-999999999", "1e", "1e+x"} {
		if got, ok := wholeNumber(json.Number(text)); ok {
			t.Errorf("%s: read as %d, want refused", text, got)
		}
	}
}
