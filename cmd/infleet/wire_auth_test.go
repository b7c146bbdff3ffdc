package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/messages"
)

// startInstance runs an in-process `serve` with its own data dir and the given YAML (which may
// point store.sqlite.path at a shared file), and returns its harness and a stop function
// (also called at cleanup).
func startInstance(t *testing.T, yaml string) (*apiHarness, func()) {
	t.Helper()
	return startRoles(t, t.TempDir(), yaml, roles{ingress: true, workers: true})
}

// e2eJWKS is an issuer: a JWKS server with one ES256 key, rotated on demand.
type e2eJWKS struct {
	mu     sync.Mutex
	kid    string
	key    *ecdsa.PrivateKey
	server *httptest.Server
}

func newE2EJWKS(t *testing.T) *e2eJWKS {
	t.Helper()
	j := &e2eJWKS{}
	j.rotate(t, "first")
	j.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		pub, err := j.key.PublicKey.ECDH()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		b := pub.Bytes() // 0x04 || X || Y
		enc := base64.RawURLEncoding.EncodeToString
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": j.kid, "x": enc(b[1:33]), "y": enc(b[33:]),
		}}})
	}))
	t.Cleanup(j.server.Close)
	return j
}

func (j *e2eJWKS) rotate(t *testing.T, kid string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.kid, j.key = kid, key
}

func (j *e2eJWKS) token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	full := jwt.MapClaims{"iss": "https://idp.test", "sub": "svc", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		full[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, full)
	tok.Header["kid"] = j.kid
	s, err := tok.SignedString(j.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hashKey(k string) string {
	d := sha256.Sum256([]byte(k))
	return hex.EncodeToString(d[:])
}

// Two ingress processes (each with its own data dir and queue) share one SQLite file for the
// job store and the limits: between them a key gets its burst and quota once, not twice; the
// quota holds across a restart; tenants are isolated and an operator sees all.
func TestE2EAuthTwoIngressesShareLimits(t *testing.T) {
	t.Parallel()
	shared := filepath.Join(t.TempDir(), "shared.db")
	idp := newE2EJWKS(t)
	yaml := fmt.Sprintf(`
store: {sqlite: {path: %q}}
models: [{name: fast, provider: sim, latency: 1ms}]
auth:
  api_keys:
    - {key: "k_acme_e2e_0001", tenant: acme, tasks: [summarize]}
    - {key_sha256: %q, tenant: globex}
    - {key: "k_ops_e2e_00001", tenant: ops, role: operator}
    - {key: "k_rate_e2e_0001", tenant: rated, rate: 0.001, burst: 40}
    - {key: "k_quota_e2e_001", tenant: quoted, quota: 25, quota_period: day}
  jwt: {issuer: "https://idp.test", jwks_url: %q, leeway: 1s}
`, shared, hashKey("k_globex_e2e_01"), idp.server.URL)
	a, _ := startInstance(t, yaml)
	b, stopB := startInstance(t, yaml)
	key := func(k string) map[string]string { return map[string]string{"X-Api-Key": k} }
	job := `{"task":"summarize","input":{"text":"secret text"}}`

	// Rate: 100 requests over both instances; the shared bucket grants the burst once.
	var granted, limited atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		h := []*apiHarness{a, b}[i%2]
		wg.Go(func() {
			for range 25 {
				code, hdr, _ := h.do(http.MethodGet, "/v1/jobs", "", key("k_rate_e2e_0001"))
				switch code {
				case http.StatusOK:
					granted.Add(1)
				case http.StatusTooManyRequests:
					if hdr.Get("Retry-After") == "" || hdr.Get("RateLimit-Remaining") != "0" {
						t.Errorf("429 without Retry-After or RateLimit headers: %v", hdr)
					}
					limited.Add(1)
				default:
					t.Errorf("rate request: status %d", code)
				}
			}
		})
	}
	wg.Wait()
	if g := granted.Load(); g < 40 || g > 42 {
		t.Errorf("two ingresses granted %d requests of a burst of 40 (limited %d); want 40 within 5%%", g, limited.Load())
	}

	// Quota: 25 jobs a day between both, and still used up after B restarts.
	accepted := 0
	for i := range 40 {
		h := []*apiHarness{a, b}[i%2]
		code, hdr, body := h.do(http.MethodPost, "/v1/jobs", job, key("k_quota_e2e_001"))
		switch code {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			if hdr.Get("Retry-After") == "" {
				t.Errorf("quota 429 without Retry-After")
			}
		default:
			t.Fatalf("quota submit: %d %s", code, body)
		}
	}
	if accepted != 25 {
		t.Errorf("accepted %d jobs of a quota of 25 across two ingresses", accepted)
	}
	stopB()
	b, _ = startInstance(t, yaml)
	if code, _, _ := b.do(http.MethodPost, "/v1/jobs", job, key("k_quota_e2e_001")); code != http.StatusTooManyRequests {
		t.Errorf("after a restart the used-up quota allows a job: %d", code)
	}

	// Tenants: acme's job is 404 to globex (on either instance), visible to the operator.
	code, _, body := a.do(http.MethodPost, "/v1/jobs", job, key("k_acme_e2e_0001"))
	if code != http.StatusAccepted {
		t.Fatalf("acme submit: %d %s", code, body)
	}
	var acc struct {
		JobID string `json:"job_id"`
	}
	_ = json.Unmarshal(body, &acc)
	for _, h := range []*apiHarness{a, b} {
		if code, _, _ := h.do(http.MethodGet, "/v1/jobs/"+acc.JobID, "", key("k_globex_e2e_01")); code != http.StatusNotFound {
			t.Errorf("globex reads acme's job: %d, want 404", code)
		}
		if code, _, _ := h.do(http.MethodGet, "/v1/jobs/"+acc.JobID, "", key("k_ops_e2e_00001")); code != http.StatusOK {
			t.Errorf("operator reads acme's job: %d, want 200", code)
		}
	}
	if code, _, _ := a.do(http.MethodPost, "/v1/jobs", `{"task":"translate","input":{"text":"x"}}`, key("k_acme_e2e_0001")); code != http.StatusForbidden {
		t.Errorf("acme submits a task it may not: %d, want 403", code)
	}
	a.eventually(10*time.Second, func() bool {
		_, _, body := a.do(http.MethodGet, "/v1/jobs/"+acc.JobID, "", key("k_acme_e2e_0001"))
		var rec messages.JobRecord
		_ = json.Unmarshal(body, &rec)
		return rec.Status == messages.StatusCompleted
	})

	// Bearer tokens: valid, expired, and after the issuer rotates its key.
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	good := idp.token(t, jwt.MapClaims{"tenant": "acme", "scope": "task:summarize"})
	if code, _, _ := b.do(http.MethodGet, "/v1/jobs/"+acc.JobID, "", bearer(good)); code != http.StatusOK {
		t.Errorf("acme token reads acme's job: %d", code)
	}
	expired := idp.token(t, jwt.MapClaims{"tenant": "acme", "exp": time.Now().Add(-time.Minute).Unix()})
	if code, hdr, _ := b.do(http.MethodGet, "/v1/jobs", "", bearer(expired)); code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("expired token: %d %v", code, hdr)
	}
	idp.rotate(t, "second")
	rotated := idp.token(t, jwt.MapClaims{"tenant": "globex", "scope": "task:*"})
	if code, _, body := b.do(http.MethodPost, "/v1/jobs", job, bearer(rotated)); code != http.StatusAccepted {
		t.Errorf("token of the rotated key: %d %s", code, body)
	}
	if code, _, _ := b.do(http.MethodGet, "/v1/jobs/"+acc.JobID, "", bearer(rotated)); code != http.StatusNotFound {
		t.Errorf("globex token reads acme's job: %d, want 404", code)
	}
	if code, _, _ := a.do(http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("healthz needs credentials: %d", code)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key, and returns their paths
// and a pool trusting it.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "infleet test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TLS from files, CORS for one origin, and the open API refusing an internal callback_url.
func TestE2ETLSAndCORS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := writeCert(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	path := filepath.Join(dir, "infleet.yaml")
	yaml := fmt.Sprintf("addr: %q\ndata_dir: %q\nhttp: {tls_cert_file: %q, tls_key_file: %q, cors_origins: [\"https://app.example\"]}\n",
		addr, filepath.Join(dir, "data"), certFile, keyFile)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, configSource{}, zerolog.Nop(), roles{ingress: true, workers: true}) }()
	t.Cleanup(func() { cancel(); <-done })

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	h := &apiHarness{base: "https://" + addr, t: t}
	h.eventually(10*time.Second, func() bool {
		resp, err := client.Get(h.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	req, _ := http.NewRequest(http.MethodOptions, h.base+"/v1/jobs", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("preflight = %d %v", resp.StatusCode, resp.Header)
	}
	body := `{"task":"summarize","input":{"text":"x"},"callback_url":"https://169.254.169.254/latest"}`
	resp, err = client.Post(h.base+"/v1/jobs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("metadata callback_url at submit: %d, want 400", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS listener: %d, want an error or 400", resp.StatusCode)
		}
	}
}
