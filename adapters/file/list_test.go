package file_test

import (
	"context"
	"reflect"
	"testing"
)

func TestListReturnsObjectsUnderPrefix(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	for _, k := range []string{"archive/2026/11/23/09/a.jsonl", "archive/2026/11/23/10/b.jsonl", "archive/2026/11/24/00/c.jsonl", "j1.json"} {
		if err := s.Put(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(ctx, "archive/2026/11/23/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"archive/2026/11/23/09/a.jsonl", "archive/2026/11/23/10/b.jsonl"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	if got, err := s.List(ctx, "archive/2030/"); err != nil || len(got) != 0 {
		t.Fatalf("missing prefix: %v, %v", got, err)
	}
	if _, err := s.List(ctx, "../x/"); err == nil {
		t.Fatal("a prefix climbing out of the store was listed")
	}
}
