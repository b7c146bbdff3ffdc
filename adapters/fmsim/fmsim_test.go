package fmsim

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// call sends one chat completion straight to the handler.
func call(t *testing.T, h http.Handler, model, text string) *httptest.ResponseRecorder {
	t.Helper()
	body := `{"model":"` + model + `","messages":[{"role":"user","content":"` + text + `"}]}`
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func do(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRatesAndStats(t *testing.T) {
	t.Parallel()
	s := New(Config{Seed: 7, Faults: Faults{ThrottleRate: 0.3, ErrorRate: 0.05, NotReadyRate: 0.05, TimeoutRate: 0.05}})
	const n = 2000
	codes := map[int]int{}
	for range n {
		codes[call(t, s, "m", "hi").Code]++
	}
	st := s.Stats()
	if st.Calls != n || st.ByAPI[APIChat] != n || st.ByModel["m"] != n {
		t.Fatalf("stats = %+v, want %d chat calls to m", st, n)
	}
	within := func(name string, got int64, rate float64) {
		if want := rate * n; math.Abs(float64(got)-want) > 0.25*want {
			t.Errorf("%s: %d of %d calls, want about %.0f", name, got, n, want)
		}
	}
	within(OutcomeThrottled, st.ByOutcome[OutcomeThrottled], 0.3)
	within(OutcomeError, st.ByOutcome[OutcomeError], 0.05)
	within(OutcomeNotReady, st.ByOutcome[OutcomeNotReady], 0.05)
	within(OutcomeModelTimeout, st.ByOutcome[OutcomeModelTimeout], 0.05)
	within(OutcomeOK, st.ByOutcome[OutcomeOK], 0.55)
	if int64(codes[429]) != st.ByOutcome[OutcomeThrottled] || int64(codes[200]) != st.ByOutcome[OutcomeOK] {
		t.Errorf("status codes %v disagree with outcomes %v", codes, st.ByOutcome)
	}

	rec := do(t, s, http.MethodGet, "/stats", "")
	var got Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Calls != n || got.ByModelOutcome["m"][OutcomeOK] != st.ByOutcome[OutcomeOK] {
		t.Errorf("GET /stats = %s (%v), want the counters", rec.Body, err)
	}
	do(t, s, http.MethodDelete, "/stats", "")
	if st := s.Stats(); st.Calls != 0 {
		t.Errorf("after DELETE /stats calls = %d, want 0", st.Calls)
	}
}

func TestSameSeedSameFaults(t *testing.T) {
	t.Parallel()
	cfg := Config{Seed: 42, Faults: Faults{ThrottleRate: 0.5}}
	a, b := New(cfg), New(cfg)
	for i := range 100 {
		if ca, cb := call(t, a, "m", "x").Code, call(t, b, "m", "x").Code; ca != cb {
			t.Fatalf("call %d: %d vs %d, want the same outcome from the same seed", i, ca, cb)
		}
	}
}

func TestAnswersAreDeterministic(t *testing.T) {
	t.Parallel()
	s := New(Config{})
	a, b := call(t, s, "m", "one two three"), call(t, s, "m", "one two three")
	if a.Body.String() == "" || !strings.Contains(a.Body.String(), "one two three") {
		t.Fatalf("answer = %s, want an echo", a.Body)
	}
	pick := func(r *httptest.ResponseRecorder) string {
		var v struct {
			Choices []struct{ Message struct{ Content string } }
		}
		_ = json.Unmarshal(r.Body.Bytes(), &v)
		return v.Choices[0].Message.Content
	}
	if pick(a) != pick(b) {
		t.Errorf("answers differ: %q vs %q", pick(a), pick(b))
	}
}

func TestAdminFaults(t *testing.T) {
	t.Parallel()
	s := New(Config{})
	if rec := do(t, s, http.MethodPost, "/admin/faults", `{"throttle_rate":1,"retry_after":"2s"}`); rec.Code != http.StatusNoContent {
		t.Fatalf("POST /admin/faults = %d %s", rec.Code, rec.Body)
	}
	rec := call(t, s, "m", "hi")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "2" || rec.Header().Get("Retry-After-Ms") != "2000" {
		t.Errorf("throttled answer = %d, headers %v; want 429 with Retry-After 2", rec.Code, rec.Header())
	}
	// A model's own faults win over the default ones.
	do(t, s, http.MethodPost, "/admin/faults?model=healthy", `{}`)
	do(t, s, http.MethodPost, "/admin/faults?model=broken", `{"down":true}`)
	if c := call(t, s, "healthy", "hi").Code; c != 200 {
		t.Errorf("healthy model answered %d, want 200", c)
	}
	if c := call(t, s, "broken", "hi").Code; c != 503 {
		t.Errorf("broken model answered %d, want 503", c)
	}
	rec = do(t, s, http.MethodGet, "/admin/faults", "")
	if !strings.Contains(rec.Body.String(), `"down":true`) || !strings.Contains(rec.Body.String(), `"retry_after":"2s"`) {
		t.Errorf("GET /admin/faults = %s, want the settings", rec.Body)
	}
	do(t, s, http.MethodDelete, "/admin/faults?model=broken", "")
	do(t, s, http.MethodDelete, "/admin/faults", "")
	if c := call(t, s, "broken", "hi").Code; c != 200 {
		t.Errorf("after DELETE the broken model answered %d, want 200", c)
	}
	for _, bad := range []string{`{"throttle_rate":2}`, `{"nope":1}`, `{"latency":{"dist":"zipf"}}`, `{"outages":[{"from":"2s","to":"1s"}]}`, `{"retry_after":"soon"}`} {
		if rec := do(t, s, http.MethodPost, "/admin/faults", bad); rec.Code != http.StatusBadRequest {
			t.Errorf("POST /admin/faults %s = %d, want 400", bad, rec.Code)
		}
	}
}

func TestOutageWindows(t *testing.T) {
	t.Parallel()
	s := New(Config{Faults: Faults{Outages: []Outage{{From: time.Hour, To: 2 * time.Hour}}}})
	if c := call(t, s, "m", "hi").Code; c != 200 {
		t.Errorf("before the outage: %d, want 200", c)
	}
	s.SetFaults("", Faults{Outages: []Outage{{From: 0, To: time.Hour}}})
	if c := call(t, s, "m", "hi").Code; c != 503 {
		t.Errorf("during the outage: %d, want 503", c)
	}
	if n := s.Stats().ByOutcome[OutcomeOutage]; n != 1 {
		t.Errorf("outages counted %d, want 1", n)
	}
}

func TestContextWindow(t *testing.T) {
	t.Parallel()
	s := New(Config{Models: map[string]Faults{"small": {ContextWindow: 10}}})
	long := strings.Repeat("word ", 20)
	if c := call(t, s, "big", long).Code; c != 200 {
		t.Errorf("big model: %d, want 200", c)
	}
	rec := call(t, s, "small", long)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "context_length_exceeded") {
		t.Errorf("small model: %d %s, want 400 context_length_exceeded", rec.Code, rec.Body)
	}
	body := `{"messages":[{"role":"user","content":[{"text":"` + long + `"}]}]}`
	rec = do(t, s, http.MethodPost, "/model/small/converse", body)
	if rec.Code != 400 || rec.Header().Get("X-Amzn-ErrorType") != "ValidationException" || !strings.Contains(rec.Body.String(), "too long") {
		t.Errorf("converse: %d %v %s, want a ValidationException saying too long", rec.Code, rec.Header(), rec.Body)
	}
}

func TestCloseReleasesHangs(t *testing.T) {
	t.Parallel()
	s := New(Config{Faults: Faults{HangRate: 1}})
	done := make(chan int)
	go func() { done <- call(t, s, "m", "hi").Code }()
	waitFor(t, func() bool { return s.Stats().ByOutcome[OutcomeHang] == 1 })
	select {
	case <-done:
		t.Fatal("a hanging call answered before Close")
	default:
	}
	s.Close()
	select {
	case code := <-done:
		if code != http.StatusServiceUnavailable {
			t.Errorf("released call answered %d, want 503", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hanging call")
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := New(Config{})
	for _, tc := range []struct{ path, body string }{
		{"/model/m/converse", `{"messages":[]}`},
		{"/model/m/converse", `not json`},
		{"/model/m/invoke", `{"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`},
		{"/model/m/invoke", `{"anthropic_version":"bedrock-2023-05-31","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`},
	} {
		if rec := do(t, s, http.MethodPost, tc.path, tc.body); rec.Code != 400 {
			t.Errorf("POST %s %s = %d, want 400", tc.path, tc.body, rec.Code)
		}
	}
	if n := s.Stats().ByOutcome[OutcomeBadRequest]; n != 5 {
		t.Errorf("bad requests counted %d, want 5", n)
	}
}

func TestLatencyPercentiles(t *testing.T) {
	t.Parallel()
	for _, l := range []Latency{
		{Dist: DistFixed, P50: 20 * time.Millisecond},
		{Dist: DistUniform, P50: 100 * time.Millisecond, P99: 190 * time.Millisecond},
		{Dist: DistNormal, P50: 100 * time.Millisecond, P99: 150 * time.Millisecond},
		{Dist: DistLognormal, P50: 100 * time.Millisecond, P99: 900 * time.Millisecond},
	} {
		const n = 20000
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = l.draw(1, uint64(i+1))
		}
		slices.Sort(d)
		p50, p99 := d[n/2], d[n*99/100]
		want99 := cmpOr(l.P99, l.P50)
		if math.Abs(float64(p50-l.P50)) > 0.05*float64(l.P50) || math.Abs(float64(p99-want99)) > 0.05*float64(want99) {
			t.Errorf("%s: p50 %s p99 %s, want about %s and %s", l.Dist, p50, p99, l.P50, want99)
		}
	}
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := New(Config{Faults: Faults{ThrottleRate: 0.5}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	const workers, calls = 8, 50
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range calls {
				resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json",
					strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if i%10 == 0 {
					s.SetFaults("", Faults{ThrottleRate: float64(w%2) / 2})
					_ = s.Stats()
				}
			}
		}()
	}
	for range workers {
		<-done
	}
	if st := s.Stats(); st.Calls != workers*calls || st.ByOutcome[OutcomeOK]+st.ByOutcome[OutcomeThrottled] != workers*calls {
		t.Errorf("stats = %+v, want %d calls, each ok or throttled", st, workers*calls)
	}
}
