package config

// DefaultHeapFloorBytes is runtime.heap_floor_bytes when unset: 64 MiB.
const DefaultHeapFloorBytes int64 = 64 << 20

// Runtime tunes the Go runtime of the processes that run jobs or take them (serve, ingress,
// worker).
type Runtime struct {
	// HeapFloorBytes is the least heap the garbage collector lets grow before it collects:
	// while twice the live heap is below it, GOGC is raised after each collection so that
	// the next one comes at this size; once twice the live heap is above it, GOGC is the one
	// the process started with (the GOGC environment variable, 100 by default). A process
	// with a small live heap under load then collects a few times less often (less CPU,
	// fewer requests held up by a collection) for at most this much memory. nil (unset) means
	// DefaultHeapFloorBytes; 0 turns the floor off. Read it with HeapFloor.
	HeapFloorBytes *int64 `yaml:"heap_floor_bytes,omitempty"`
}

// HeapFloor returns runtime.heap_floor_bytes: DefaultHeapFloorBytes when unset, 0 when off.
func (r Runtime) HeapFloor() uint64 {
	if r.HeapFloorBytes == nil {
		return uint64(DefaultHeapFloorBytes)
	}
	return uint64(max(*r.HeapFloorBytes, 0))
}

// applyDefaults fills the runtime section's unset settings.
func (r *Runtime) applyDefaults() {
	if r.HeapFloorBytes == nil {
		r.HeapFloorBytes = new(DefaultHeapFloorBytes)
	}
}
