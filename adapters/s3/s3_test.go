package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/infleet/infleet/adapters/s3"
	"github.com/infleet/infleet/internal/awstest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// recorder is an HTTP transport that remembers every request it carries.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{method: req.Method, path: req.URL.Path, query: req.URL.RawQuery, header: req.Header.Clone()})
	r.mu.Unlock()
	if req.Method == http.MethodPost && strings.Contains(req.URL.RawQuery, "uploadId") {
		// fauxqs 1.9.2 unescapes &quot; but not &#34;, which Go's XML encoder writes for the
		// quotes around each part's ETag, and then finds no part matching.
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		b = bytes.ReplaceAll(b, []byte("&#34;"), []byte("&quot;"))
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// bundle is what a test works with: a fresh bucket on the emulator and its client.
type bundle struct {
	client *awss3.Client
	rec    *recorder
	bucket string
}

// setup returns a client on INFLEET_TEST_AWS_ENDPOINT and a fresh bucket, or skips the test when
// the variable is unset.
func setup(t *testing.T) *bundle {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	rec := &recorder{}
	client := awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		// fauxqs cannot read per-part checksums in CompleteMultipartUpload.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		Credentials:                credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:                 &http.Client{Transport: rec},
	})
	b := &bundle{client: client, rec: rec, bucket: "infleet-test-" + uuid.NewString()[:8]}
	if err := s3.EnsureBucket(ctxT(t), client, b.bucket); err != nil {
		t.Fatalf("ensure bucket: %v", err)
	}
	return b
}

func (b *bundle) store(t *testing.T, cfg s3.Config) *s3.Store {
	t.Helper()
	cfg.Client, cfg.Bucket = b.client, b.bucket
	st, err := s3.New(cfg)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	return st
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func read(t *testing.T, st *s3.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

func TestPutGetRoundTripUnderPrefix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.store(t, s3.Config{Prefix: "results/"})
	ctx := ctxT(t)
	if err := st.Put(ctx, "j1.json", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, "j1.json", []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, st, "j1.json"); string(got) != `{"a":2}` {
		t.Fatalf("got %s, want the second write", got)
	}
	// The object lives under the prefix.
	out, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String("results/j1.json")})
	if err != nil {
		t.Fatalf("head results/j1.json: %v", err)
	}
	if ct := aws.ToString(out.ContentType); ct != "application/json" {
		t.Errorf("content type %q, want application/json", ct)
	}
	if _, err := st.Get(ctx, "missing.json"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get of a missing key: %v, want ErrNotFound", err)
	}
}

func TestLargeObjectGoesMultipart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.store(t, s3.Config{PartSize: 5 << 20, SSE: s3.SSES3})
	data := make([]byte, 12<<20)
	_, _ = rand.Read(data)
	if err := st.Put(ctxT(t), "big.bin", data); err != nil {
		t.Fatal(err)
	}
	if got := read(t, st, "big.bin"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
	}
	var creates, parts, completes int
	for _, r := range b.rec.requests() {
		switch {
		case r.method == http.MethodPost && strings.Contains(r.query, "uploads") && !strings.Contains(r.query, "uploadId"):
			creates++
			if got := r.header.Get("X-Amz-Server-Side-Encryption"); got != s3.SSES3 {
				t.Errorf("CreateMultipartUpload sent SSE %q, want %q", got, s3.SSES3)
			}
		case r.method == http.MethodPut && strings.Contains(r.query, "partNumber"):
			parts++
		case r.method == http.MethodPost && strings.Contains(r.query, "uploadId"):
			completes++
		}
	}
	if creates != 1 || parts != 3 || completes != 1 {
		t.Fatalf("multipart calls: %d create, %d parts, %d complete; want 1, 3, 1", creates, parts, completes)
	}
}

func TestSSEHeadersAreSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.store(t, s3.Config{SSE: s3.SSEKMS, KMSKeyID: "alias/infleet"})
	if err := st.Put(ctxT(t), "enc.json", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var put *recorded
	for _, r := range b.rec.requests() {
		if r.method == http.MethodPut && strings.HasSuffix(r.path, "/enc.json") {
			put = &r
		}
	}
	if put == nil {
		t.Fatal("no PutObject request seen")
	}
	if got := put.header.Get("X-Amz-Server-Side-Encryption"); got != s3.SSEKMS {
		t.Errorf("SSE header %q, want %q", got, s3.SSEKMS)
	}
	if got := put.header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != "alias/infleet" {
		t.Errorf("KMS key header %q, want alias/infleet", got)
	}
}

func TestListAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.store(t, s3.Config{Prefix: "p/"})
	ctx := ctxT(t)
	want := []string{"archive/2026/01/01/00/a.jsonl", "archive/2026/01/01/00/b.jsonl", "archive/2026/01/02/03/c.jsonl"}
	for _, k := range []string{want[2], want[0], want[1], "other.json"} {
		if err := st.Put(ctx, k, []byte("x\n")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.List(ctx, "archive/")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("list: %v, want %v", got, want)
	}
	if err := st.Delete(ctx, want[0]); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "never-was.json"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	got, _ = st.List(ctx, "archive/2026/01/01/")
	if len(got) != 1 || got[0] != want[1] {
		t.Fatalf("after delete: %v, want [%s]", got, want[1])
	}
}

func TestDeleteBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.store(t, s3.Config{Prefix: "results/"})
	ctx := ctxT(t)
	const n = 1001 // more than one DeleteObjects request of 1,000 keys
	keys := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		keys[i] = fmt.Sprintf("job-%04d.json", i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := st.Put(ctx, keys[i], []byte("{}")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := st.Put(ctx, "kept.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	before := len(b.rec.requests())
	if err := st.DeleteBatch(ctx, append(keys, "never-was.json")); err != nil {
		t.Fatalf("DeleteBatch: %v", err)
	}
	deletes := 0
	for _, r := range b.rec.requests()[before:] {
		if r.method == http.MethodPost && strings.Contains(r.query, "delete") {
			deletes++
		}
	}
	if deletes != 2 {
		t.Errorf("%d DeleteObjects requests for %d keys, want 2", deletes, n+1)
	}
	got, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "kept.json" {
		t.Fatalf("objects left %v, want [kept.json]", got[:min(5, len(got))])
	}
	if err := st.DeleteBatch(ctx, nil); err != nil {
		t.Fatalf("DeleteBatch of no keys: %v", err)
	}
}

func TestListPaginates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.store(t, s3.Config{})
	ctx := ctxT(t)
	const n = 1005 // more than one page of 1,000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := st.Put(ctx, "k/"+fmt.Sprintf("%04d", i), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := st.List(ctx, "k/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[0] != "k/0000" || got[n-1] != "k/1004" {
		t.Fatalf("list gave %d keys (%v ... ), want %d sorted", len(got), got[:min(3, len(got))], n)
	}
}

func TestFetchReadsAnyBucketWithinTheLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := setup(t) // a second bucket: inputs need not be in the results bucket
	st := b.store(t, s3.Config{MaxInputBytes: 16})
	ctx := ctxT(t)
	put := func(key, body string) {
		_, err := b.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(other.bucket), Key: aws.String(key), Body: strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("in/ok.txt", "hello world")
	put("in/big.txt", strings.Repeat("x", 17))

	text, err := st.Fetch(ctx, "s3://"+other.bucket+"/in/ok.txt")
	if err != nil || text != "hello world" {
		t.Fatalf("fetch: %q, %v", text, err)
	}

	cases := []struct {
		name, uri, want string
	}{
		{"too large", "s3://" + other.bucket + "/in/big.txt", "over the limit of 16 bytes"},
		{"missing key", "s3://" + other.bucket + "/in/nope.txt", `S3 object "in/nope.txt" does not exist in bucket "` + other.bucket + `"`},
		{"missing bucket", "s3://no-such-bucket-" + uuid.NewString()[:8] + "/k", "does not exist: run \"infleet init\" or create it"},
		{"not s3", "https://example.com/k", "not an s3:// URI"},
		{"no key", "s3://" + other.bucket, "names no bucket or no key"},
	}
	for _, c := range cases {
		_, err := st.Fetch(ctx, c.uri)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.name, err, c.want)
			continue
		}
		var perm *pipeline.PermanentError
		if !errors.As(err, &perm) || perm.Code != messages.ErrCodeInvalidJob {
			t.Errorf("%s: %v is not a permanent %s failure", c.name, err, messages.ErrCodeInvalidJob)
		}
	}
}

func TestPresignedURLIsFetchableWithPlainHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.store(t, s3.Config{Prefix: "r/"})
	ctx := ctxT(t)
	if err := st.Put(ctx, "j.json", []byte(`{"output":{"text":"hi"}}`)); err != nil {
		t.Fatal(err)
	}
	url, err := st.Signer(time.Minute).SignedURL(ctx, "j.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(url, "X-Amz-Signature=") || !strings.Contains(url, "X-Amz-Expires=60") {
		t.Fatalf("URL %s is not presigned for 60s", url)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != `{"output":{"text":"hi"}}` {
		t.Fatalf("GET presigned URL: %d %s", resp.StatusCode, body)
	}
}

func TestCheckAndEnsureBucket(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := ctxT(t)
	if err := b.store(t, s3.Config{}).Check(ctx); err != nil {
		t.Fatalf("check of an existing bucket: %v", err)
	}
	if err := s3.EnsureBucket(ctx, b.client, b.bucket); err != nil {
		t.Fatalf("ensure twice: %v", err)
	}
	missing := "infleet-missing-" + uuid.NewString()[:8]
	st, err := s3.New(s3.Config{Client: b.client, Bucket: missing})
	if err != nil {
		t.Fatal(err)
	}
	want := `S3 bucket "` + missing + `" does not exist: run "infleet init" or create it`
	if err := st.Check(ctx); err == nil || err.Error() != want {
		t.Fatalf("check of a missing bucket: %v, want %q", err, want)
	}
	if err := st.Put(ctx, "x.json", nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("put to a missing bucket: %v, want it to say %q", err, want)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := s3.New(s3.Config{SSE: "rot13", KMSKeyID: "k", PartSize: 1})
	for _, want := range []string{"Client is nil", "Bucket is empty", `SSE "rot13"`, "KMSKeyID is set", "PartSize 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation error %v does not say %q", err, want)
		}
	}
}
