package delivery

import (
	"context"
	"sync"
)

// Group is the life cycle of one Subscriber's engines: Subscribe joins it, Close stops every
// engine of the group gracefully and waits for them, and nothing joins after Close. Its
// methods are safe for concurrent use; the zero value is not usable (use NewGroup).
type Group struct {
	mu      sync.Mutex
	closed  bool
	closing context.Context // cancelled when Close begins
	close   context.CancelFunc
	running sync.WaitGroup // one per subscription joined and not yet finished
}

// NewGroup returns an open Group.
func NewGroup() *Group {
	g := &Group{}
	g.closing, g.close = context.WithCancel(context.Background())
	return g
}

// Join counts a subscription about to start, so that Close waits for it, and reports false
// after Close. Each true Join must be followed by one Start or Leave.
func (g *Group) Join() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.running.Add(1)
	return true
}

// Leave uncounts a joined subscription that did not start.
func (g *Group) Leave() { g.running.Done() }

// Start runs an engine (see the package Start) for a joined subscription; the engine leaves
// the group when it has stopped. It begins to stop when Close is called, as with its own
// Close.
func (g *Group) Start(ctx context.Context, cfg Config, src Source) *Engine {
	return start(ctx, g.closing, cfg, src, g.running.Done)
}

// Closed reports whether Close has been called.
func (g *Group) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Close stops every engine of the group as Engine.Close does, and returns when all have
// stopped. It is idempotent.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.close()
	g.running.Wait()
}
