// Package file keeps result objects as files under one local directory: the pipeline.BlobStore
// of the embedded, single-machine setup (`infleet serve` with no config).
package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/infleet/infleet/pipeline"
)

// Permissions of what the store creates. Objects are not executable and are readable by the
// group so that an operator's tools can pick results up.
const (
	dirPerm  fs.FileMode = 0o750
	filePerm fs.FileMode = 0o640
)

// tempPrefix starts the name of every file a Put is still writing. Keys whose last element
// starts with it are refused, so an object can never collide with an unfinished write.
const tempPrefix = ".infleet-tmp-"

// tempDir holds the temporary files of writes in progress, inside the store's directory (so a
// rename moves them into place atomically); it is not an object and List skips it.
const tempDir = tempPrefix + "dir"

// Config says where a Store keeps its objects.
type Config struct {
	// Dir is the directory holding the objects; required. New creates it when missing.
	Dir string
	// Sync makes Put flush the object and its directory entry to stable storage before it
	// returns. Default false: an object is then durable across a crash of the process (the
	// rename is atomic and the page cache outlives the process) but not across a power loss.
	Sync bool
}

// Validate reports every problem with c, naming the field and the fix.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("file store: Dir is empty (set results.file dir or --data-dir to a writable directory)")
	}
	return nil
}

// Store is a pipeline.BlobStore over a local directory. Keys are slash-separated relative
// paths ("abc.json", "archive/2026/11/23/10.jsonl"); intermediate directories are created on
// demand. Put replaces an object atomically, so readers see the old or the new object whole,
// never part of one. A Store is safe for concurrent use by many goroutines; concurrent Puts of
// one key leave one of the written objects. Access is confined to Dir: a key cannot reach
// outside it, neither by "..", by an absolute path nor through a symbolic link.
type Store struct {
	dir  string // absolute
	sync bool
	root *os.Root
}

var (
	_ pipeline.BlobStore = (*Store)(nil)
	_ pipeline.Checker   = (*Store)(nil)
)

// New validates cfg, creates cfg.Dir (and its parents) when missing and opens it.
// The returned Store holds the directory open until Close.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("file store: resolve %q: %w", cfg.Dir, err)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("file store: create %s (check its parent exists and is writable): %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("file store: open %s: %w", dir, err)
	}
	if err := root.MkdirAll(tempDir, dirPerm); err != nil {
		_ = root.Close()
		return nil, fmt.Errorf("file store: create %s/%s: %w", dir, tempDir, err)
	}
	return &Store{dir: dir, sync: cfg.Sync, root: root}, nil
}

// Dir returns the absolute path of the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the directory. Calls after Close fail; Close is idempotent.
func (s *Store) Close() error {
	if err := s.root.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("file store: close %s: %w", s.dir, err)
	}
	return nil
}

// Put writes data under key, replacing any object there: it writes a temporary file in the
// store's temporary directory and renames it over the key (creating a file in a small
// directory costs a third of creating it beside tens of thousands of results), so a reader never sees a partial object and a
// failed Put leaves the previous object in place. Put is idempotent.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	name, err := checkKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store: put %s: %w", key, err)
	}
	parent := path.Dir(name)
	if parent != "." {
		if err := s.root.MkdirAll(parent, dirPerm); err != nil {
			return fmt.Errorf("file store: put %s: create directory: %w", key, err)
		}
	}
	tmp, err := s.writeTemp(tempDir, data)
	if err != nil {
		return fmt.Errorf("file store: put %s (check %s is writable and has space): %w", key, s.dir, err)
	}
	if err := s.root.Rename(tmp, name); err != nil {
		_ = s.root.Remove(tmp)
		return fmt.Errorf("file store: put %s: rename into place: %w", key, err)
	}
	if s.sync {
		if err := s.syncDir(parent); err != nil {
			return fmt.Errorf("file store: put %s: sync directory: %w", key, err)
		}
	}
	return nil
}

// writeTemp writes data to a new temporary file in dir (relative to the root) and returns its
// name. The file is removed again when anything fails.
func (s *Store) writeTemp(dir string, data []byte) (name string, err error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand documents it)
	name = path.Join(dir, tempPrefix+hex.EncodeToString(rnd[:]))
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = s.root.Remove(name)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return "", err
	}
	if s.sync {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return "", err
		}
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return name, nil
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	return errors.Join(serr, cerr)
}

// Get opens the object under key for reading; the caller closes it. A missing key returns an
// error matching pipeline.ErrNotFound. The returned reader sees the object as it was when Get
// opened it, even if a Put replaces it meanwhile.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := checkKey(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("file store: get %s: %w", key, err)
	}
	f, err := s.root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("file store: get %s: %w", key, pipeline.ErrNotFound)
		}
		return nil, fmt.Errorf("file store: get %s: %w", key, err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("file store: get %s: %w", key, err)
	}
	if !info.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("file store: get %s: not an object (it is a directory or special file): %w", key, pipeline.ErrNotFound)
	}
	return f, nil
}

// Check reports whether the directory exists and is writable, by creating and removing a
// small file in it. It is the store's readiness probe (pipeline.Checker).
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store: check %s: %w", s.dir, err)
	}
	name, err := s.writeTemp(".", []byte("ok"))
	if err != nil {
		return fmt.Errorf("file store: %s is not writable (check it exists, its permissions and free space): %w", s.dir, err)
	}
	if err := s.root.Remove(name); err != nil {
		return fmt.Errorf("file store: check %s: remove probe: %w", s.dir, err)
	}
	return nil
}

// URL returns the file:// URL of the object under key, whether or not it exists. It does not
// validate key; Put and Get do.
func (s *Store) URL(key string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(s.dir, filepath.FromSlash(key)))}
	return u.String()
}

// ErrBadKey is matched (errors.Is) by the error of a Put or Get whose key is not a clean
// relative path inside the store.
var ErrBadKey = errors.New("bad object key (use a relative slash-separated path without \"..\", such as \"results/abc.json\")")

// checkKey returns key as a name relative to the root, or an error wrapping ErrBadKey when key
// is empty, absolute, not in clean form, climbs out with "..", or names a temporary file.
func checkKey(key string) (string, error) {
	switch {
	case key == "", key == ".",
		path.Clean(key) != key,
		strings.Contains(key, `\`),
		!filepath.IsLocal(filepath.FromSlash(key)),
		strings.HasPrefix(path.Base(key), tempPrefix):
		return "", fmt.Errorf("file store: key %q: %w", key, ErrBadKey)
	}
	return key, nil
}
