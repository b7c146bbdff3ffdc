package file_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.BlobAppender = (*file.Store)(nil)

func TestAppendAddsWholeWritesInAnyOrder(t *testing.T) {
	t.Parallel()
	for _, synced := range []bool{false, true} {
		s, err := file.New(file.Config{Dir: t.TempDir(), Sync: synced})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		const n = 50
		for i := range n {
			wg.Go(func() {
				line := fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", 4000))
				if err := s.Append(context.Background(), "a/b/log.jsonl", []byte(line)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		rc, err := s.Get(context.Background(), "a/b/log.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(lines) != n {
			t.Fatalf("sync %v: %d lines, want %d", synced, len(lines), n)
		}
		seen := map[string]bool{}
		for _, l := range lines {
			if len(l) != len("line 00 ")+4000 {
				t.Fatalf("sync %v: interleaved line %.20q… of %d bytes", synced, l, len(l))
			}
			seen[l[:7]] = true
		}
		if len(seen) != n {
			t.Fatalf("sync %v: %d distinct lines", synced, len(seen))
		}
		if err := s.Append(context.Background(), "../x", []byte("no")); err == nil {
			t.Fatal("append outside the store accepted")
		}
		s.Close()
	}
}
