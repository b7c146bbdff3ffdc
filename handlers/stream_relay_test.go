package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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
