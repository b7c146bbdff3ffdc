//go:build !(linux || darwin || freebsd)

package nats

// freeBytes cannot tell on this platform; the server then learns of a full disk from
// JetStream's failed writes alone.
func freeBytes(string) (int64, bool) { return 0, false }
