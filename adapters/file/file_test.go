package file_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/internal/disktest"
	"github.com/infleet/infleet/pipeline"
)

func setup(t *testing.T) *file.Store {
	t.Helper()
	s, err := file.New(file.Config{Dir: filepath.Join(t.TempDir(), "results")})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func get(t *testing.T, s *file.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func TestNewRequiresDir(t *testing.T) {
	t.Parallel()
	if _, err := file.New(file.Config{}); err == nil {
		t.Fatal("New with empty Dir: want error")
	}
}

func TestNewCreatesDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := file.New(file.Config{Dir: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Dir not created: %v", err)
	}
}

func TestPutGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			t.Parallel()
			s, err := file.New(file.Config{Dir: t.TempDir(), Sync: sync})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			for _, key := range []string{"abc.json", "archive/2026/11/23/10.jsonl"} {
				want := []byte(`{"job_id":"` + key + `"}`)
				if err := s.Put(ctx, key, want); err != nil {
					t.Fatalf("Put(%q): %v", key, err)
				}
				if got := get(t, s, key); !bytes.Equal(got, want) {
					t.Fatalf("Get(%q) = %q, want %q", key, got, want)
				}
				onDisk, err := os.ReadFile(filepath.Join(s.Dir(), filepath.FromSlash(key)))
				if err != nil || !bytes.Equal(onDisk, want) {
					t.Fatalf("file for %q = %q, %v", key, onDisk, err)
				}
			}
		})
	}
}

func TestPutOverwrites(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	if err := s.Put(ctx, "k.json", []byte("a much longer first version")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k.json", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, s, "k.json")); got != "v2" {
		t.Fatalf("after overwrite got %q, want v2", got)
	}
	assertNoTempFiles(t, s.Dir())
}

func TestPutEmptyObject(t *testing.T) {
	t.Parallel()
	s := setup(t)
	if err := s.Put(context.Background(), "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "empty"); len(got) != 0 {
		t.Fatalf("got %q, want empty", got)
	}
}

func TestGetMissing(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	if err := s.Put(ctx, "dir/x.json", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"nope.json", "dir/nope.json", "nodir/x.json", "dir"} {
		_, err := s.Get(ctx, key)
		if !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("Get(%q) err = %v, want ErrNotFound", key, err)
		}
	}
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	outside := filepath.Join(filepath.Dir(s.Dir()), "escaped")
	for _, key := range []string{
		"", ".", "..", "../escaped", "a/../../escaped", "/etc/passwd", outside,
		"a//b", "a/./b", "a/", `a\b`, ".infleet-tmp-0011",
	} {
		if err := s.Put(ctx, key, []byte("x")); !errors.Is(err, file.ErrBadKey) {
			t.Errorf("Put(%q) err = %v, want ErrBadKey", key, err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, file.ErrBadKey) {
			t.Errorf("Get(%q) err = %v, want ErrBadKey", key, err)
		}
	}
	if _, err := os.Stat(outside); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a write escaped the store: %v", err)
	}
}

func TestSymlinkCannotEscape(t *testing.T) {
	t.Parallel()
	s := setup(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(s.Dir(), "link")); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	if err := s.Put(context.Background(), "link/x.json", []byte("x")); err == nil {
		t.Fatal("Put through a symlink leading outside the store succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "x.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a write escaped the store: %v", err)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "k", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put err = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get err = %v, want context.Canceled", err)
	}
}

// TestConcurrentPutsAndGets checks that readers racing writers of one key always read a whole
// object, one of those written.
func TestConcurrentPutsAndGets(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
	}
	if err := s.Put(ctx, "hot/key.json", versions[0]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range versions {
		wg.Go(func() {
			for range 10 {
				if err := s.Put(ctx, "hot/key.json", versions[i]); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				rc, err := s.Get(ctx, "hot/key.json")
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(rc)
				_ = rc.Close()
				if err != nil {
					errs <- err
					return
				}
				if len(b) != 64<<10 || bytes.Count(b, b[:1]) != len(b) {
					errs <- fmt.Errorf("read a torn object of %d bytes", len(b))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assertNoTempFiles(t, s.Dir())
}

func TestCheck(t *testing.T) {
	t.Parallel()
	s := setup(t)
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check on a writable dir: %v", err)
	}
	assertNoTempFiles(t, s.Dir())
	if os.Geteuid() == 0 {
		// root writes through permission bits; removing the directory is the failure we can
		// cause.
		if err := os.RemoveAll(s.Dir()); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Chmod(s.Dir(), 0o500); err != nil {
		t.Fatal(err)
	} else {
		t.Cleanup(func() { _ = os.Chmod(s.Dir(), 0o750) })
	}
	if err := s.Check(context.Background()); err == nil {
		t.Fatal("Check on an unwritable or removed dir: want error")
	}
}

// TestFullDisk fills a real (tmpfs) file system: a Put fails with ErrStorageFull and leaves no
// temporary file, the readiness check says the same, and both work again once space returns.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	mnt := disktest.Mount(t, "2m")
	s, err := file.New(file.Config{Dir: filepath.Join(mnt, "results")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.Put(ctx, "before.json", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	filler := disktest.Fill(t, mnt)
	big := bytes.Repeat([]byte("r"), 256<<10)
	for _, key := range []string{"job.json", "before.json", "archive/2026/12/04/16/1.jsonl"} {
		if err := s.Put(ctx, key, big); !errors.Is(err, pipeline.ErrStorageFull) {
			t.Fatalf("Put(%q) on a full disk: %v, want ErrStorageFull", key, err)
		}
	}
	assertNoTempFiles(t, s.Dir())
	if got := string(get(t, s, "before.json")); got != "kept" {
		t.Fatalf("a failed Put changed the object: %q", got)
	}
	if err := s.Check(ctx); !errors.Is(err, pipeline.ErrStorageFull) {
		t.Fatalf("Check on a full disk: %v, want ErrStorageFull", err)
	}
	assertNoTempFiles(t, s.Dir())

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "job.json", big); err != nil {
		t.Fatalf("Put once space returned: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check once space returned: %v", err)
	}
	assertNoTempFiles(t, s.Dir())
}

// TestNewRemovesStaleTempFiles leaves the temporary files of a process that died mid-write,
// of this process's id (a restarted container), of an older version and of a long-gone write:
// New removes them and keeps those of a live process and every object.
func TestNewRemovesStaleTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".infleet-tmp-dir")
	if err := os.MkdirAll(filepath.Join(dir, "archive"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("no process to outlive: %v", err)
	}
	deadPID, ownPID, livePID := dead.Process.Pid, os.Getpid(), os.Getppid()
	name := func(pid int, suffix string) string { return ".infleet-tmp-" + strconv.Itoa(pid) + "-" + suffix }
	stale := []string{
		filepath.Join(tmp, name(deadPID, "0a0a0a0a0a0a0a0a")),
		filepath.Join(tmp, name(ownPID, "0b0b0b0b0b0b0b0b")),
		filepath.Join(tmp, ".infleet-tmp-0c0c0c0c0c0c0c0c"), // an older version's name
		filepath.Join(tmp, name(livePID, "0d0d0d0d0d0d0d0d")),
		filepath.Join(dir, name(deadPID, "0e0e0e0e0e0e0e0e")), // a readiness probe
	}
	kept := []string{
		filepath.Join(tmp, name(livePID, "0f0f0f0f0f0f0f0f")),
		filepath.Join(dir, "abc.json"),
		filepath.Join(dir, "archive", "1.jsonl"),
	}
	for _, p := range append(append([]string(nil), stale...), kept...) {
		if err := os.WriteFile(p, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale[3], old, old); err != nil { // a live process's, but too old to be a write under way
		t.Fatal(err)
	}
	s, err := file.New(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale temporary file %s not removed: %v", p, err)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if got := string(get(t, s, "abc.json")); got != "partial" {
		t.Fatalf("object changed: %q", got)
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	s := setup(t)
	got := s.URL("archive/a b.json")
	want := "file://" + filepath.ToSlash(s.Dir()) + "/archive/a%20b.json"
	if got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".infleet-tmp-") && !d.IsDir() {
			return fmt.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 2<<10)
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			s, err := file.New(file.Config{Dir: b.TempDir(), Sync: sync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.Put(ctx, fmt.Sprintf("results/%d.json", i%1000), data); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkPutNew writes objects under new names, as result writes do (a result per job).
func BenchmarkPutNew(b *testing.B) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 332)
	s, err := file.New(file.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Put(ctx, "results/"+strconv.Itoa(i)+".json", data); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestExists(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	for _, key := range []string{"x.json", "dir/y.json"} {
		if err := s.Put(ctx, key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "sub.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{
		"x.json": true, "dir/y.json": true,
		"nope.json": false, "dir/nope.json": false, "nodir/x.json": false, "dir": false, "sub.json": false,
	} {
		got, err := s.Exists(ctx, key)
		if err != nil || got != want {
			t.Errorf("Exists(%q) = %v, %v; want %v, nil", key, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "nodir")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Exists created a directory: %v", err)
	}
	for _, key := range []string{"", "..", "../escaped", "/etc/passwd"} {
		if _, err := s.Exists(ctx, key); !errors.Is(err, file.ErrBadKey) {
			t.Errorf("Exists(%q) err = %v, want ErrBadKey", key, err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Exists(cancelled, "x.json"); !errors.Is(err, context.Canceled) {
		t.Errorf("Exists with a cancelled context err = %v, want context.Canceled", err)
	}
}
