package s3_test

import (
	"strings"
	"testing"

	"github.com/infleet/infleet/adapters/s3"
)

func TestObjectReadsWholeAndVersionsByETag(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st := b.store(t, s3.Config{})
	if err := st.Put(ctxT(t), "cfg.yaml", []byte("routes: {default: fast}\n")); err != nil {
		t.Fatal(err)
	}
	uri := "s3://" + b.bucket + "/cfg.yaml"
	obj, err := s3.NewObject(b.client, uri, 64)
	if err != nil {
		t.Fatal(err)
	}
	data, err := obj.Read(ctxT(t))
	if err != nil || string(data) != "routes: {default: fast}\n" {
		t.Fatalf("Read = %q, %v", data, err)
	}
	v1, err := obj.Version(ctxT(t))
	if err != nil || v1 == "" {
		t.Fatalf("Version = %q, %v", v1, err)
	}
	if err := st.Put(ctxT(t), "cfg.yaml", []byte(strings.Repeat("#", 65))); err != nil {
		t.Fatal(err)
	}
	if v2, err := obj.Version(ctxT(t)); err != nil || v2 == v1 {
		t.Fatalf("Version after a change = %q (was %q), %v", v2, v1, err)
	}
	if _, err := obj.Read(ctxT(t)); err == nil || !strings.Contains(err.Error(), "larger than 64 bytes") {
		t.Fatalf("Read of an object over the limit: %v", err)
	}
	missing, _ := s3.NewObject(b.client, "s3://"+b.bucket+"/nope.yaml", 64)
	if _, err := missing.Read(ctxT(t)); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("Read of a missing object: %v", err)
	}
	if _, err := s3.NewObject(b.client, "http://x/y", 64); err == nil {
		t.Fatal("NewObject accepted a URI that is not s3://")
	}
}
