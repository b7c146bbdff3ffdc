package pipeline

import "context"

// Checker is an optional ability of a dependency: Check reports whether it is reachable, for
// /readyz.
type Checker interface {
	Check(ctx context.Context) error
}
