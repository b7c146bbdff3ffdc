package worker

// A message's handler runs on a goroutine of its own (Watermill's router starts one per
// message), which starts with a small stack. A job's run goes deep enough that the stack used
// to grow three times per job, each growth copying what was already on it (in the 0 ms
// burn-down, 4.6 % of the worker's CPU). growStack grows it once, at the top, where there is
// little to copy, to a size the whole run fits in.

// stackReserve is the frame growStack takes: with the few hundred bytes already in use at
// Process, the runtime doubles the stack until both fit, to 16 KiB. Not more: a 16 KiB frame
// makes a 32 KiB stack, a size the runtime does not keep in its per-processor stack caches,
// and that stack cost about what the growths it saved did. TestJobRunFitsTheStackReserve and,
// for a job run as a deployment runs it (router, middleware, model fleet, deferred claim),
// TestJobRunThroughTheRouterFitsTheStackReserve fail when a job's run outgrows it.
const stackReserve = 12 << 10

// stackProbe is read by growStack so that its frame cannot be optimized away.
var stackProbe int

// growStack makes the calling goroutine's stack hold stackReserve more bytes than it does
// where it is called, growing it in one step when it is smaller. It has no other effect.
//
//go:noinline
func growStack() byte {
	var reserve [stackReserve]byte
	return reserve[stackProbe]
}
