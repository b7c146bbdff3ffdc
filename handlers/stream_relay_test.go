package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

func TestStreamRelayNeedsTheKeyAndRelaysFromTheOffset(t *testing.T) {
	t.Parallel()
	hub := pipeline.NewHub()
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(WithStreamRelay(next, hub, "0123456789abcdef"))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/other")
	if err != nil || resp.StatusCode != http.StatusTeapot {
		t.Fatalf("other routes: %v %v, want them passed on", resp.StatusCode, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+StreamRelayPrefix+"j1", nil)
	req.Header.Set("Authorization", "Bearer wrong-key-of-16-chars")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("wrong key: %v %v, want a 401 problem", resp.StatusCode, err)
	}
	resp.Body.Close()

	// A relay of another process follows job j1, which starts streaming after it asked.
	relay, err := NewStreamRelay(StreamRelayConfig{
		Key: "0123456789abcdef",
		Locate: func(context.Context, string) (string, bool, error) {
			return srv.URL, false, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, end := hub.StartStream("j1")
	st.Write("Hello")
	got := relay.Follow(ctx, "j1", 3)
	var text strings.Builder
	read := func(n int) {
		for text.Len() < n {
			select {
			case s := <-got:
				text.WriteString(s)
			case <-ctx.Done():
				t.Fatalf("relayed %q before the deadline", text.String())
			}
		}
	}
	read(len("lo"))
	st.Write(", ")
	st.Write("world")
	end()
	read(len("lo, world"))
	if text.String() != "lo, world" {
		t.Fatalf("relayed %q from offset 3, want %q", text.String(), "lo, world")
	}
}

// N clients waiting on one job that has not begun streaming share its store reads: about one
// Locate per poll interval, not one per client. When the job starts streaming every client gets
// its text, and when the job ends every client's feed closes.
func TestStreamRelayClientsOfOneJobShareTheirPolls(t *testing.T) {
	t.Parallel()
	hub := pipeline.NewHub()
	srv := httptest.NewServer(WithStreamRelay(http.NotFoundHandler(), hub, "0123456789abcdef"))
	t.Cleanup(srv.Close)
	const clients, poll = 20, 10 * time.Millisecond
	var reads, otherReads atomic.Int64
	var from atomic.Value
	from.Store("")
	var ended atomic.Bool
	relay, err := NewStreamRelay(StreamRelayConfig{
		Key:  "0123456789abcdef",
		Poll: poll,
		Locate: func(_ context.Context, id string) (string, bool, error) {
			if id != "j1" {
				otherReads.Add(1)
				return "", false, nil
			}
			reads.Add(1)
			return from.Load().(string), ended.Load(), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	feeds := make([]<-chan string, clients)
	start := time.Now()
	for i := range feeds {
		feeds[i] = relay.Follow(ctx, "j1", 0)
	}
	other := relay.Follow(ctx, "j2", 0) // another job polls on its own
	time.Sleep(300 * time.Millisecond)
	n, elapsed := reads.Load(), time.Since(start)
	if most := int64(elapsed/poll) + 2; n > most || n < 3 {
		t.Errorf("%d clients waiting %v at a %v poll made %d reads, want at most %d (one per interval)", clients, elapsed, poll, n, most)
	}
	if otherReads.Load() == 0 {
		t.Error("a client of another job made no read")
	}
	t.Logf("%d clients waiting %v: %d reads of the job's record", clients, elapsed.Round(time.Millisecond), n)

	// The job starts streaming here: every client relays its text.
	st, end := hub.StartStream("j1")
	st.Write("Hello")
	from.Store(srv.URL)
	for i, feed := range feeds {
		select {
		case s := <-feed:
			if s != "Hello" {
				t.Errorf("client %d got %q, want Hello", i, s)
			}
		case <-ctx.Done():
			t.Fatalf("client %d got nothing", i)
		}
	}
	// While they relay, the job's record is not read (but for a read that a client still
	// waking from the last one asked for).
	before := reads.Load()
	time.Sleep(10 * poll)
	if n := reads.Load() - before; n > 2 {
		t.Errorf("%d reads in %v while every client relayed, want none", n, 10*poll)
	}
	ended.Store(true)
	end()
	for i, feed := range feeds {
		for range feed {
		}
		if ctx.Err() != nil {
			t.Fatalf("client %d's feed did not close when the job ended", i)
		}
	}
	cancel()
	for range other {
	}
}
