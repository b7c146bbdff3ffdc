package handlers

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
)

const (
	keyAcme     = "k_acme_0123456789"
	keyGlobex   = "k_globex_0123456789"
	keyOperator = "k_operator_0123456789"
	keyLimited  = "k_limited_0123456789"
	keyQuota    = "k_quota_0123456789"
	testIssuer  = "https://issuer.test"
)

// authBundle is the API over the real intake service with authentication, a SQLite limit
// store and a JWKS server issuing Ed25519 keys.
type authBundle struct {
	*testBundle
	svc    *intake.Service
	limits *sqlite.Limits
	jwks   *jwksServer
	audit  *syncBuffer
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func setupAuth(t *testing.T) *authBundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "jobs.db")})
	if err != nil {
		t.Fatalf("open job store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	limits, err := sqlite.OpenLimits(ctx, sqlite.Config{Path: filepath.Join(dir, "jobs.db")})
	if err != nil {
		t.Fatalf("open limits: %v", err)
	}
	t.Cleanup(func() { _ = limits.Close() })
	results, err := file.New(file.Config{Dir: filepath.Join(dir, "results")})
	if err != nil {
		t.Fatalf("open result store: %v", err)
	}
	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = pubsub.Close() })
	svc, err := intake.New(intake.Config{
		Store: store, Results: results, Publisher: pubsub, Hub: pipeline.NewHub(),
		Topics: pipeline.Topics{High: "high", Normal: "normal", Low: "low", Dead: "dead"},
	})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	keys, err := NewAPIKeys([]APIKeySpec{
		{Key: keyAcme, Principal: Principal{Tenant: "acme", Tasks: []string{"summarize"}, Models: []string{"fast"}}},
		{SHA256: sha256Hex(keyGlobex), Principal: Principal{Tenant: "globex", Tasks: []string{"*"}, Models: []string{"*"}}},
		{Key: keyOperator, Principal: Principal{Tenant: "ops", Operator: true, Tasks: []string{"*"}, Models: []string{"*"}}},
		{Key: keyLimited, Principal: Principal{Tenant: "small", Tasks: []string{"*"}, Models: []string{"*"},
			Limit: Limit{Rate: 0.01, Burst: 3}}},
		{Key: keyQuota, Principal: Principal{Tenant: "quota", Tasks: []string{"*"}, Models: []string{"*"},
			Limit: Limit{Quota: 2, QuotaPeriod: "day"}}},
	})
	if err != nil {
		t.Fatalf("NewAPIKeys: %v", err)
	}
	js := newJWKSServer(t)
	v, err := NewJWTVerifier(JWTConfig{
		Keyfunc: js.keyfunc(t), Issuer: testIssuer, Audience: "infleet", TenantClaim: "tenant",
		TaskScopePrefix: "task:", OperatorScope: "operator", Leeway: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("NewJWTVerifier: %v", err)
	}
	audit := &syncBuffer{}
	b := setup(t, func(c *APIConfig) {
		c.Jobs = GuardJobs(svc, GuardConfig{Limits: limits, Audit: zerolog.New(audit)})
		c.Middleware = []func(http.Handler) http.Handler{Authenticate(AuthConfig{
			Verifiers: []Verifier{keys, v}, Limits: limits,
		})}
	})
	return &authBundle{testBundle: b, svc: svc, limits: limits, jwks: js, audit: audit}
}

// jwksServer serves a JWK Set of Ed25519 keys that a test can rotate.
type jwksServer struct {
	mu     sync.Mutex
	keys   map[string]ed25519.PrivateKey
	server *httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	j := &jwksServer{keys: map[string]ed25519.PrivateKey{}}
	j.addKey(t, "k1")
	j.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range j.keys {
			set.Keys = append(set.Keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
				"x": base64.RawURLEncoding.EncodeToString(k.Public().(ed25519.PublicKey))})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(j.server.Close)
	return j
}

func (j *jwksServer) addKey(t *testing.T, kid string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys[kid] = priv
}

// rotate replaces every key by a new one named kid.
func (j *jwksServer) rotate(t *testing.T, kid string) {
	t.Helper()
	j.mu.Lock()
	clear(j.keys)
	j.mu.Unlock()
	j.addKey(t, kid)
}

func (j *jwksServer) keyfunc(t *testing.T) jwt.Keyfunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{j.server.URL}, keyfunc.Override{
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		RateLimitWaitMax:  time.Second,
	})
	if err != nil {
		t.Fatalf("keyfunc: %v", err)
	}
	return kf.Keyfunc
}

// token signs claims (with iss, aud and a 5-minute exp added unless given) with key kid.
func (j *jwksServer) token(t *testing.T, kid string, claims jwt.MapClaims) string {
	t.Helper()
	j.mu.Lock()
	priv := j.keys[kid]
	j.mu.Unlock()
	if priv == nil {
		_, priv, _ = ed25519.GenerateKey(rand.Reader)
	}
	full := jwt.MapClaims{"iss": testIssuer, "aud": "infleet", "sub": "user-1", "exp": time.Now().Add(5 * time.Minute).Unix()}
	for k, v := range claims {
		full[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, full)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthRefusesMissingAndBadCredentials(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"none", nil},
		{"unknown key", []string{"X-Api-Key: k_unknown_0123456789"}},
		{"short key", []string{"X-Api-Key: short"}},
		{"basic auth", []string{"Authorization: Basic dXNlcjpwYXNz"}},
		{"not a jwt", []string{"Authorization: Bearer abc"}},
	} {
		resp := b.do(t, http.MethodGet, "/v1/jobs", "", tc.headers...)
		p := readProblem(t, resp, http.StatusUnauthorized, SlugUnauthorized)
		if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate = %q", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
		if strings.Contains(p.Detail, "k_unknown") {
			t.Errorf("%s: the problem repeats the key: %q", tc.name, p.Detail)
		}
	}
	// Probes and metrics need no credentials; the API document does.
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/openapi.json": 401} {
		if resp := b.do(t, http.MethodGet, path, ""); resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestAuthTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	acmeJob := b.submit(t, "X-Api-Key: "+keyAcme)
	globexJob := b.submit(t, "X-Api-Key: "+keyGlobex)

	// Another tenant's job is 404, never 403, on every route.
	for _, path := range []string{"/v1/jobs/" + acmeJob, "/v1/jobs/" + acmeJob + "/result", "/v1/jobs/" + acmeJob + "/events"} {
		readProblem(t, b.do(t, http.MethodGet, path, "", "X-Api-Key: "+keyGlobex), http.StatusNotFound, SlugNotFound)
	}
	readProblem(t, b.do(t, http.MethodDelete, "/v1/jobs/"+acmeJob, "", "X-Api-Key: "+keyGlobex), http.StatusNotFound, SlugNotFound)
	if resp := b.do(t, http.MethodGet, "/v1/jobs/"+acmeJob, "", "X-Api-Key: "+keyAcme); resp.StatusCode != http.StatusOK {
		t.Fatalf("owner GET = %d", resp.StatusCode)
	}

	listIDs := func(key string) []string {
		var page struct {
			Jobs []struct {
				JobID string `json:"job_id"`
			} `json:"jobs"`
		}
		resp := b.do(t, http.MethodGet, "/v1/jobs", "", "X-Api-Key: "+key)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list = %d: %s", resp.StatusCode, readAll(t, resp))
		}
		decodeInto(t, resp, &page)
		var ids []string
		for _, j := range page.Jobs {
			ids = append(ids, j.JobID)
		}
		return ids
	}
	if ids := listIDs(keyAcme); len(ids) != 1 || ids[0] != acmeJob {
		t.Errorf("acme lists %v, want only %s", ids, acmeJob)
	}
	if ids := listIDs(keyOperator); len(ids) != 2 {
		t.Errorf("operator lists %v, want both jobs", ids)
	}
	// The job record carries its tenant.
	if rec, err := b.svc.Get(context.Background(), globexJob, "globex"); err != nil || rec.Tenant != "globex" {
		t.Errorf("globex job = %+v, %v", rec, err)
	}

	// An operator sees and cancels any job, and the cancel is audited without payloads.
	if resp := b.do(t, http.MethodGet, "/v1/jobs/"+acmeJob, "", "X-Api-Key: "+keyOperator); resp.StatusCode != http.StatusOK {
		t.Fatalf("operator GET = %d", resp.StatusCode)
	}
	if resp := b.do(t, http.MethodDelete, "/v1/jobs/"+acmeJob, "", "X-Api-Key: "+keyOperator); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("operator cancel = %d: %s", resp.StatusCode, readAll(t, resp))
	}
	audit := b.audit.String()
	for _, want := range []string{`"action":"cancel"`, `"job_id":"` + acmeJob + `"`, `"job_tenant":"acme"`, `"actor":"key:`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log %q lacks %s", audit, want)
		}
	}
	if strings.Contains(audit, "hello world") || strings.Contains(audit, keyOperator) {
		t.Errorf("audit log carries a payload or a key: %s", audit)
	}
}

func TestAuthTaskAndModelRules(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	job := func(task, model string) string {
		s := `{"task":"` + task + `","input":{"text":"x"}`
		if model != "" {
			s += `,"model":"` + model + `"`
		}
		return s + "}"
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{job("summarize", ""), http.StatusAccepted},
		{job("summarize", "fast"), http.StatusAccepted},
		{job("translate", ""), http.StatusForbidden},
		{job("summarize", "main"), http.StatusForbidden},
	} {
		resp := b.do(t, http.MethodPost, "/v1/jobs", tc.body, "X-Api-Key: "+keyAcme)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.body, resp.StatusCode, tc.want, readAll(t, resp))
		}
	}
	// In a batch, the refused item is refused alone.
	resp := b.do(t, http.MethodPost, "/v1/jobs:batch", `{"jobs":[`+job("summarize", "")+`,`+job("translate", "")+`]}`, "X-Api-Key: "+keyAcme)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(body, `"status":403`) {
		t.Errorf("batch = %d %s, want 202 with a 403 item", resp.StatusCode, body)
	}
}

func TestAuthRateLimit(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	for i := range 3 {
		resp := b.do(t, http.MethodGet, "/v1/jobs", "", "X-Api-Key: "+keyLimited)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d = %d", i, resp.StatusCode)
		}
		if got := resp.Header.Get("RateLimit-Remaining"); got != strconv.Itoa(2-i) {
			t.Errorf("request %d RateLimit-Remaining = %q, want %d", i, got, 2-i)
		}
	}
	resp := b.do(t, http.MethodGet, "/v1/jobs", "", "X-Api-Key: "+keyLimited)
	readProblem(t, resp, http.StatusTooManyRequests, SlugRateLimited)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if ra < 1 || resp.Header.Get("RateLimit-Limit") != "3" || resp.Header.Get("RateLimit-Remaining") != "0" ||
		resp.Header.Get("RateLimit-Policy") == "" {
		t.Errorf("429 headers = %v", resp.Header)
	}
	// Other keys are not affected.
	if resp := b.do(t, http.MethodGet, "/v1/jobs", "", "X-Api-Key: "+keyAcme); resp.StatusCode != http.StatusOK {
		t.Errorf("another key = %d", resp.StatusCode)
	}
}

func TestAuthQuota(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	b.submit(t, "X-Api-Key: "+keyQuota, "Idempotency-Key: q1")
	// A replay of the same job costs nothing.
	b.submit(t, "X-Api-Key: "+keyQuota, "Idempotency-Key: q1")
	b.submit(t, "X-Api-Key: "+keyQuota)
	resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, "X-Api-Key: "+keyQuota)
	p := readProblem(t, resp, http.StatusTooManyRequests, SlugRateLimited)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 86400 || !strings.Contains(p.Detail, "per day") {
		t.Errorf("quota refusal: Retry-After %q, detail %q", resp.Header.Get("Retry-After"), p.Detail)
	}
	// Reads are not counted against the quota.
	if resp := b.do(t, http.MethodGet, "/v1/jobs", "", "X-Api-Key: "+keyQuota); resp.StatusCode != http.StatusOK {
		t.Errorf("list after quota = %d", resp.StatusCode)
	}
}

func TestAuthJWT(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	bearer := func(tok string) string { return "Authorization: Bearer " + tok }
	client := b.jwks.token(t, "k1", jwt.MapClaims{"tenant": "acme", "scope": "openid task:summarize"})
	id := b.submit(t, bearer(client))
	if resp := b.do(t, http.MethodGet, "/v1/jobs/"+id, "", "X-Api-Key: "+keyAcme); resp.StatusCode != http.StatusOK {
		t.Errorf("the acme key cannot see the acme token's job: %d", resp.StatusCode)
	}
	readProblem(t, b.do(t, http.MethodPost, "/v1/jobs", `{"task":"translate","input":{"text":"x"}}`, bearer(client)),
		http.StatusForbidden, SlugForbidden)

	for name, tok := range map[string]string{
		"expired":       b.jwks.token(t, "k1", jwt.MapClaims{"tenant": "acme", "exp": time.Now().Add(-time.Minute).Unix()}),
		"not yet valid": b.jwks.token(t, "k1", jwt.MapClaims{"tenant": "acme", "nbf": time.Now().Add(time.Minute).Unix()}),
		"other issuer":  b.jwks.token(t, "k1", jwt.MapClaims{"tenant": "acme", "iss": "https://evil.test"}),
		"other aud":     b.jwks.token(t, "k1", jwt.MapClaims{"tenant": "acme", "aud": "someone-else"}),
		"no tenant":     b.jwks.token(t, "k1", jwt.MapClaims{}),
		"unknown key":   b.jwks.token(t, "nope", jwt.MapClaims{"tenant": "acme"}),
		"no exp":        b.jwks.token(t, "k1", jwt.MapClaims{"tenant": "acme", "exp": nil}),
	} {
		resp := b.do(t, http.MethodGet, "/v1/jobs", "", bearer(tok))
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s token: status %d, WWW-Authenticate %q; want 401 with invalid_token", name, resp.StatusCode,
				resp.Header.Get("WWW-Authenticate"))
		}
	}
	// Within the leeway an expired token still passes.
	skewed := b.jwks.token(t, "k1", jwt.MapClaims{"tenant": "acme", "exp": time.Now().Add(-2 * time.Second).Unix()})
	if resp := b.do(t, http.MethodGet, "/v1/jobs", "", bearer(skewed)); resp.StatusCode != http.StatusOK {
		t.Errorf("token expired 2s ago (leeway 5s): %d", resp.StatusCode)
	}

	// The issuer rotates its key: tokens of the new key are accepted after a refresh, tokens
	// of the old key no longer.
	b.jwks.rotate(t, "k2")
	rotated := b.jwks.token(t, "k2", jwt.MapClaims{"tenant": "acme", "scope": "task:*"})
	if resp := b.do(t, http.MethodGet, "/v1/jobs/"+id, "", bearer(rotated)); resp.StatusCode != http.StatusOK {
		t.Errorf("token of the rotated key: %d %s", resp.StatusCode, readAll(t, resp))
	}

	// The operator scope sees every tenant.
	op := b.jwks.token(t, "k2", jwt.MapClaims{"tenant": "ops", "scp": []string{"operator"}})
	other := b.submit(t, "X-Api-Key: "+keyGlobex)
	if resp := b.do(t, http.MethodGet, "/v1/jobs/"+other, "", bearer(op)); resp.StatusCode != http.StatusOK {
		t.Errorf("operator token GET = %d", resp.StatusCode)
	}
}

func TestRequireOperator(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := RequireOperator(ok)
	for _, tc := range []struct {
		ctx  context.Context
		want int
	}{
		{context.Background(), http.StatusNoContent},
		{ContextWithPrincipal(context.Background(), Principal{Tenant: "acme"}), http.StatusForbidden},
		{ContextWithPrincipal(context.Background(), Principal{Operator: true}), http.StatusNoContent},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(tc.ctx, http.MethodGet, "/v1/dead-letters", nil))
		if rec.Code != tc.want {
			t.Errorf("status %d, want %d", rec.Code, tc.want)
		}
	}
}

func TestNewAPIKeysRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	for _, specs := range [][]APIKeySpec{
		{{}},
		{{Key: "k_one_01234567", SHA256: sha256Hex("k_one_01234567")}},
		{{SHA256: "xyz"}},
		{{Key: "k_one_01234567"}, {SHA256: sha256Hex("k_one_01234567")}},
	} {
		if _, err := NewAPIKeys(specs); err == nil {
			t.Errorf("NewAPIKeys(%+v) accepted", specs)
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := CORS([]string{"https://app.example"})(next)
	pre := httptest.NewRequest(http.MethodOptions, "/v1/jobs", nil)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "X-Api-Key") {
		t.Errorf("preflight = %d %v", rec.Code, rec.Header())
	}
	other := httptest.NewRequest(http.MethodGet, "/v1/jobs", nil)
	other.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, other)
	if rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin got %v", rec.Header())
	}
}
