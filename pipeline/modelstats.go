package pipeline

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ModelStatsStep is the width of one minute of ModelFigures.
const ModelStatsStep = time.Minute

// ModelStatsKeep is how long a store keeps ModelFigures after their minute; older ones may be
// dropped at any write.
const ModelStatsKeep = 24 * time.Hour

// ModelLatencyBoundsMs are the upper bounds, in milliseconds, of the buckets of a
// ModelLatency; a last bucket takes everything longer.
var ModelLatencyBoundsMs = [...]int64{10, 25, 50, 100, 250, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000,
	15_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000, 600_000, 900_000}

// ModelLatencyBuckets is how many buckets a ModelLatency has.
const ModelLatencyBuckets = len(ModelLatencyBoundsMs) + 1

// ModelLatency is a compact latency histogram: per bucket of ModelLatencyBoundsMs the count of
// calls and the sum of their milliseconds. Histograms of processes add up by Merge. The zero
// value is empty.
type ModelLatency struct {
	N, Ms [ModelLatencyBuckets]int64
}

// Add counts one call of latency d.
func (h *ModelLatency) Add(d time.Duration) {
	ms := max(d.Milliseconds(), 0)
	i := len(ModelLatencyBoundsMs)
	for b, le := range ModelLatencyBoundsMs {
		if ms <= le {
			i = b
			break
		}
	}
	h.N[i]++
	h.Ms[i] += ms
}

// Merge adds o to h.
func (h *ModelLatency) Merge(o ModelLatency) {
	for i := range h.N {
		h.N[i] += o.N[i]
		h.Ms[i] += o.Ms[i]
	}
}

// Count returns how many calls h counts.
func (h ModelLatency) Count() int64 {
	var n int64
	for _, c := range h.N {
		n += max(c, 0)
	}
	return n
}

// Percentile returns the p-th percentile (0 < p <= 1, nearest rank) of h: the mean latency
// of the bucket holding the rank (exact when its calls took equally long, else between the
// bucket's bounds). Zero when h is empty.
func (h ModelLatency) Percentile(p float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := max(int64(math.Ceil(float64(total)*p)), 1)
	var seen int64
	for i, c := range h.N {
		if c <= 0 {
			continue
		}
		if seen += c; seen >= rank {
			return time.Duration(h.Ms[i]) * time.Millisecond / time.Duration(c)
		}
	}
	return 0
}

// String encodes h compactly for a store: "n0,n1,...;ms0,ms1,..." without trailing empty
// buckets ("" when empty). ParseModelLatency reads it back.
func (h ModelLatency) String() string {
	last := -1
	for i, c := range h.N {
		if c != 0 || h.Ms[i] != 0 {
			last = i
		}
	}
	if last < 0 {
		return ""
	}
	var b strings.Builder
	for _, part := range [][]int64{h.N[:last+1], h.Ms[:last+1]} {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		for i, v := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(v, 10))
		}
	}
	return b.String()
}

// ParseModelLatency reads a histogram written by ModelLatency.String.
func ParseModelLatency(s string) (ModelLatency, error) {
	var h ModelLatency
	if s == "" {
		return h, nil
	}
	ns, mss, ok := strings.Cut(s, ";")
	if !ok {
		return h, fmt.Errorf("latency histogram %q: want counts;sums", s)
	}
	for k, part := range []string{ns, mss} {
		dst := &h.N
		if k == 1 {
			dst = &h.Ms
		}
		fields := strings.Split(part, ",")
		if len(fields) > ModelLatencyBuckets {
			return ModelLatency{}, fmt.Errorf("latency histogram %q: more than %d buckets", s, ModelLatencyBuckets)
		}
		for i, f := range fields {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return ModelLatency{}, fmt.Errorf("latency histogram %q: %w", s, err)
			}
			dst[i] = v
		}
	}
	return h, nil
}

// ModelFigures are one process's figures of one model in one minute, and its view of the
// model at its last write.
type ModelFigures struct {
	Model, Process string
	// Minute is the minute's start (UTC, a multiple of ModelStatsStep).
	Minute time.Time
	// Calls counts the attempts made; Errors those that failed (throttled ones included),
	// Throttles those the model throttled. InputTokens and OutputTokens are the answered
	// attempts' tokens.
	Calls, Errors, Throttles, InputTokens, OutputTokens int64
	// Latency is the histogram of the attempts' latencies.
	Latency ModelLatency
	// Circuit is the process's breaker state of the model (closed, half_open or open) at
	// Seen, its write's heartbeat.
	Circuit string
	Seen    time.Time
}

// ModelStatsStore keeps the model figures of every process of a fleet where any process
// (an ingress too) can read them all: what the operator console's Models page and GET
// /v1/models show. It is an optional ability of a fleet's shared store, found by type
// assertion. Implementations are safe for concurrent use, also by several processes.
type ModelStatsStore interface {
	// PutModelStats records process's figures: each replaces what process recorded before
	// for its model and minute (a process writes its running totals, so a write tried again
	// counts nothing twice). Only process writes its own figures.
	PutModelStats(ctx context.Context, process string, figures []ModelFigures) error
	// ModelStats returns every process's figures of the named models for the minutes
	// starting at or after since (truncated to ModelStatsStep), in no particular order.
	ModelStats(ctx context.Context, models []string, since time.Time) ([]ModelFigures, error)
}
