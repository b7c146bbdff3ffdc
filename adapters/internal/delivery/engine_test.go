package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// fakeDelivery records what the engine did with it.
type fakeDelivery struct {
	id    string
	again bool // Nack returns this

	mu       sync.Mutex
	calls    []string
	answered bool
	extends  int
	built    int
}

func (d *fakeDelivery) record(call string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, call)
	d.answered = true
}

func (d *fakeDelivery) Message() *message.Message {
	d.mu.Lock()
	d.built++
	d.mu.Unlock()
	return message.NewMessage(d.id, nil)
}
func (d *fakeDelivery) Ack() { d.record("ack") }
func (d *fakeDelivery) Nack(delay time.Duration) bool {
	d.record(fmt.Sprintf("nack %s", delay))
	d.mu.Lock()
	d.answered = !d.again
	d.mu.Unlock()
	return d.again
}
func (d *fakeDelivery) Release() { d.record("release") }

func (d *fakeDelivery) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// funcSource is a Source (and an Extender when extend is set) made of functions.
type funcSource struct {
	fetch  func(ctx context.Context, n int, deliver func(Delivery)) error
	extend func(ds []Delivery) []bool
}

func (s funcSource) Fetch(ctx context.Context, n int, deliver func(Delivery)) error {
	return s.fetch(ctx, n, deliver)
}

type extendingSource struct{ funcSource }

func (s extendingSource) Extend(_ context.Context, ds []Delivery) []bool { return s.extend(ds) }

// listSource delivers the deliveries sent on ch, up to n per Fetch, waiting for the first.
func listSource(ch <-chan Delivery, maxSeen *atomic.Int64) funcSource {
	return funcSource{fetch: func(ctx context.Context, n int, deliver func(Delivery)) error {
		for {
			if seen := maxSeen.Load(); int64(n) > seen && !maxSeen.CompareAndSwap(seen, int64(n)) {
				continue
			}
			break
		}
		select {
		case d := <-ch:
			deliver(d)
		case <-ctx.Done():
			return ctx.Err()
		}
		for range n - 1 {
			select {
			case d := <-ch:
				deliver(d)
			default:
				return nil
			}
		}
		return nil
	}}
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("messages channel closed")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return nil
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFetchAsksForNoMoreThanMaxFetch(t *testing.T) {
	t.Parallel()
	ch := make(chan Delivery, 100)
	for i := range 100 {
		ch <- &fakeDelivery{id: fmt.Sprint(i)}
	}
	var maxSeen atomic.Int64
	e := Start(context.Background(), Config{MaxInFlight: 64, MaxFetch: 10, Fetchers: 3}, listSource(ch, &maxSeen))
	defer e.Close()
	for range 100 {
		receive(t, e.Messages()).Ack()
	}
	if got := maxSeen.Load(); got != 10 {
		t.Fatalf("largest fetch %d, want 10", got)
	}
}

func TestDeliveryBeyondNIsReleased(t *testing.T) {
	t.Parallel()
	extra := &fakeDelivery{id: "extra"}
	var once sync.Once
	src := funcSource{fetch: func(ctx context.Context, n int, deliver func(Delivery)) error {
		once.Do(func() {
			for i := range n {
				deliver(&fakeDelivery{id: fmt.Sprint(i)})
			}
			deliver(extra)
		})
		<-ctx.Done()
		return ctx.Err()
	}}
	e := Start(context.Background(), Config{MaxInFlight: 2}, src)
	defer e.Close()
	receive(t, e.Messages()).Ack()
	receive(t, e.Messages()).Ack()
	if got := extra.Calls(); len(got) != 1 || got[0] != "release" {
		t.Fatalf("extra delivery calls %v, want [release]", got)
	}
}

// A fetch under way when the engine stops may still deliver: what it delivers is given back.
func TestLateFetchIsGivenBack(t *testing.T) {
	t.Parallel()
	late := []*fakeDelivery{{id: "a"}, {id: "b"}}
	src := funcSource{fetch: func(ctx context.Context, n int, deliver func(Delivery)) error {
		<-ctx.Done() // a pull request that is not abandoned
		for _, d := range late[:min(n, len(late))] {
			deliver(d)
		}
		return nil
	}}
	e := Start(context.Background(), Config{MaxInFlight: 4}, src)
	time.Sleep(20 * time.Millisecond)
	e.Close()
	for _, d := range late {
		if got := d.Calls(); len(got) != 1 || got[0] != "release" {
			t.Errorf("%s: calls %v, want [release]", d.id, got)
		}
	}
}

// A transport that keeps a nacked delivery gets it handed out again after the delay, with
// its slot held meanwhile.
func TestNackKeptIsHandedOutAgainAfterDelay(t *testing.T) {
	t.Parallel()
	ch := make(chan Delivery, 2)
	kept := &fakeDelivery{id: "kept", again: true}
	ch <- kept
	var maxSeen atomic.Int64
	e := Start(context.Background(), Config{MaxInFlight: 1}, listSource(ch, &maxSeen))
	defer e.Close()
	m := receive(t, e.Messages())
	m.Metadata.Set("infleet_nack_delay", "200ms")
	nacked := time.Now()
	ch <- &fakeDelivery{id: "other"} // must wait: the kept one holds the only slot
	m.Nack()
	again := receive(t, e.Messages())
	if again.UUID != "kept" || time.Since(nacked) < 200*time.Millisecond {
		t.Fatalf("got %s after %s, want kept after 200ms", again.UUID, time.Since(nacked))
	}
	kept.again = false
	again.Ack()
	other := receive(t, e.Messages())
	other.Ack()
	if other.UUID != "other" {
		t.Fatalf("got %s, want other", other.UUID)
	}
	if got := kept.Calls(); len(got) != 2 || got[0] != "nack 200ms" || got[1] != "ack" {
		t.Fatalf("calls %v", got)
	}
}

func TestInvalidNackDelayRedeliversAtOnce(t *testing.T) {
	t.Parallel()
	ch := make(chan Delivery, 1)
	d := &fakeDelivery{id: "x"}
	ch <- d
	var maxSeen atomic.Int64
	e := Start(context.Background(), Config{MaxInFlight: 1}, listSource(ch, &maxSeen))
	defer e.Close()
	m := receive(t, e.Messages())
	m.Metadata.Set("infleet_nack_delay", "soon")
	m.Nack()
	waitUntil(t, "the nack", func() bool { return len(d.Calls()) == 1 })
	if got := d.Calls()[0]; got != "nack 0s" {
		t.Fatalf("call %q, want nack 0s", got)
	}
}

// Offer hands out in the caller's order, and gives a delivery back to the caller when its
// context ends first.
func TestOffer(t *testing.T) {
	t.Parallel()
	e := Start(context.Background(), Config{MaxInFlight: 2}, nil)
	defer e.Close()
	go func() {
		for i := range 3 {
			if !e.Offer(context.Background(), &fakeDelivery{id: fmt.Sprint(i)}) {
				t.Error("Offer refused")
			}
		}
	}()
	var held []*message.Message
	for i := range 2 {
		m := receive(t, e.Messages())
		if m.UUID != fmt.Sprint(i) {
			t.Fatalf("got %s, want %d", m.UUID, i)
		}
		held = append(held, m)
	}
	held[0].Ack()
	m := receive(t, e.Messages())
	defer m.Ack()
	defer held[1].Ack()
	if m.UUID != "2" {
		t.Fatalf("got %s, want 2", m.UUID)
	}
	// Both slots are taken now: an offer waits, and gives up when its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	d := &fakeDelivery{id: "late"}
	if e.Offer(ctx, d) {
		t.Fatal("Offer succeeded with every slot taken")
	}
	if got := d.Calls(); len(got) != 0 {
		t.Fatalf("an offer given back to its caller was answered: %v", got)
	}
}

// Extend is never called with a delivery that is answered, or being answered.
func TestExtendNeverAfterAnswer(t *testing.T) {
	t.Parallel()
	var bad atomic.Int64
	var extends atomic.Int64
	ch := make(chan Delivery, 1000)
	for i := range 1000 {
		ch <- &fakeDelivery{id: fmt.Sprint(i)}
	}
	var maxSeen atomic.Int64
	src := extendingSource{listSource(ch, &maxSeen)}
	src.extend = func(ds []Delivery) []bool {
		extends.Add(1)
		out := make([]bool, len(ds))
		for i, d := range ds {
			fd := d.(*fakeDelivery)
			fd.mu.Lock()
			if fd.answered {
				bad.Add(1)
			}
			fd.extends++
			fd.mu.Unlock()
			time.Sleep(time.Millisecond)
			out[i] = true
		}
		return out
	}
	e := Start(context.Background(), Config{MaxInFlight: 16, Lease: 8 * time.Millisecond, ExtendBatch: 3}, src)
	defer e.Close()
	var wg sync.WaitGroup
	for range 1000 {
		m := receive(t, e.Messages())
		wg.Go(func() {
			time.Sleep(10 * time.Millisecond)
			m.Ack()
		})
	}
	wg.Wait()
	if extends.Load() == 0 {
		t.Fatal("no lease was renewed")
	}
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d renewals of answered deliveries", n)
	}
}

func TestSourceClosedStopsTheEngine(t *testing.T) {
	t.Parallel()
	src := funcSource{fetch: func(context.Context, int, func(Delivery)) error {
		return fmt.Errorf("pull: %w", ErrSourceClosed)
	}}
	e := Start(context.Background(), Config{MaxInFlight: 1}, src)
	select {
	case <-e.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("engine did not stop when its source closed")
	}
}

func TestFetchErrorsAreRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	src := funcSource{fetch: func(ctx context.Context, n int, deliver func(Delivery)) error {
		if calls.Add(1) < 3 {
			return errors.New("broker unavailable")
		}
		deliver(&fakeDelivery{id: "x"})
		<-ctx.Done()
		return nil
	}}
	e := Start(context.Background(), Config{MaxInFlight: 1}, src)
	defer e.Close()
	receive(t, e.Messages()).Ack()
}

func TestFinishRunsBeforeTheChannelCloses(t *testing.T) {
	t.Parallel()
	var finished atomic.Bool
	ch := make(chan Delivery, 1)
	ch <- &fakeDelivery{id: "x"}
	var maxSeen atomic.Int64
	e := Start(context.Background(), Config{MaxInFlight: 1, Finish: func() { finished.Store(true) }}, listSource(ch, &maxSeen))
	m := receive(t, e.Messages())
	go func() {
		time.Sleep(20 * time.Millisecond)
		m.Ack()
	}()
	e.Close()
	if _, ok := <-e.Messages(); ok || !finished.Load() {
		t.Fatalf("channel open %v, finished %v", ok, finished.Load())
	}
}

func TestGroupCloseStopsEveryEngine(t *testing.T) {
	t.Parallel()
	g := NewGroup()
	var engines []*Engine
	for range 3 {
		if !g.Join() {
			t.Fatal("Join refused before Close")
		}
		ch := make(chan Delivery)
		var maxSeen atomic.Int64
		engines = append(engines, g.Start(context.Background(), Config{MaxInFlight: 1}, listSource(ch, &maxSeen)))
	}
	if !g.Join() {
		t.Fatal("Join refused before Close")
	}
	g.Leave()
	g.Close()
	for _, e := range engines {
		select {
		case <-e.Done():
		default:
			t.Fatal("an engine still runs after Group.Close")
		}
	}
	if g.Join() || !g.Closed() {
		t.Fatal("Join accepted after Close")
	}
	g.Close() // idempotent
}
