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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// Permissions of what the store creates. Objects are not executable and are readable by the
// group so that an operator's tools can pick results up.
const (
	dirPerm  fs.FileMode = 0o750
	filePerm fs.FileMode = 0o640
)

// tempPrefix starts the name of every file a Put is still writing: the prefix, the id of the
// process writing it, a dash and random hex (".infleet-tmp-4242-1f2e3d4c5b6a7988"). Keys whose
// last element starts with it are refused, so an object can never collide with an unfinished
// write. A failed Put removes its file; New removes those a process that died left behind.
const tempPrefix = ".infleet-tmp-"

// staleTempAge is the age past which a temporary file is stale whoever wrote it: no Put takes
// that long.
const staleTempAge = time.Hour

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
	// Logger receives the store's few log lines (temporary files removed at start); the zero
	// value discards them.
	Logger zerolog.Logger
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
	top  *os.File // dir itself, for the objects at the top level
	// onSync, when set (by tests), is told of every fsync done: "file" or "dir".
	onSync func(what string)
	// appends are the files Append keeps open between calls.
	appends appendHandles
	// dirs are the directories Put keeps open.
	dirs dirHandles
	// syncs are the directory syncs being shared (groupsync.go), by directory.
	syncsMu sync.Mutex
	syncs   map[string]*groupSync
}

var (
	_ pipeline.BlobStore = (*Store)(nil)
	_ pipeline.Checker   = (*Store)(nil)
)

// New validates cfg, creates cfg.Dir (and its parents) when missing and opens it. It removes
// the temporary files of writes that never finished because their process died (see
// RemoveStaleTemp). The returned Store holds the directory open until Close.
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
	top, err := root.Open(".")
	if err != nil {
		_ = root.Close()
		return nil, fmt.Errorf("file store: open %s: %w", dir, err)
	}
	s := &Store{dir: dir, sync: cfg.Sync, root: root, top: top}
	n, err := s.RemoveStaleTemp(time.Now())
	if err != nil {
		cfg.Logger.Warn().Err(err).Str("dir", dir).Msg("file store: some temporary files left by an earlier process could not be removed")
	}
	if n > 0 {
		cfg.Logger.Info().Int("files", n).Str("dir", dir).Msg("file store: removed temporary files of writes an earlier process did not finish")
	}
	return s, nil
}

// Dir returns the absolute path of the store's directory.
func (s *Store) Dir() string { return s.dir }

// Syncs reports whether Put and Append fsync what they wrote before they return (Config.Sync).
func (s *Store) Syncs() bool { return s.sync }

// synced tells onSync of an fsync done.
func (s *Store) synced(what string) {
	if s.onSync != nil {
		s.onSync(what)
	}
}

// Close releases the directory and the files Append keeps open. Calls after Close fail;
// Close is idempotent.
func (s *Store) Close() error {
	s.closeAppendHandles()
	s.closeDirHandles()
	if err := s.top.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		_ = s.root.Close()
		return fmt.Errorf("file store: close %s: %w", s.dir, err)
	}
	if err := s.root.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("file store: close %s: %w", s.dir, err)
	}
	return nil
}

// Put writes data under key, replacing any object there, so that a reader never sees a
// partial object and a failed Put leaves the previous object in place and no temporary file
// behind. On Linux a new object is written as an unnamed file (O_TMPFILE) and linked under its
// name: one directory operation. A replacement, and every Put where the kernel or file system
// cannot do that, writes a temporary file in the store's temporary directory and renames it
// over the key (creating a file in a small directory costs a third of creating it beside tens
// of thousands of results). A Put that failed for want of space (ENOSPC, EDQUOT) returns an
// error matching pipeline.ErrStorageFull. Put is idempotent.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	name, err := checkKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store: put %s: %w", key, err)
	}
	parent := path.Dir(name)
	linked, err := s.putLinked(parent, path.Base(name), data)
	if err != nil {
		return fmt.Errorf("file store: put %s (check %s is writable and has space): %w", key, s.dir, full(err))
	}
	if !linked {
		tmp, err := s.writeTemp(tempDir, data)
		if err != nil {
			return fmt.Errorf("file store: put %s (check %s is writable and has space): %w", key, s.dir, full(err))
		}
		err = s.root.Rename(tmp, name)
		if removedDir(err) && parent != "." {
			// The directory was removed since it was created: create it again.
			if err = s.root.MkdirAll(parent, dirPerm); err == nil {
				err = s.root.Rename(tmp, name)
			}
		}
		if err != nil {
			_ = s.root.Remove(tmp)
			return fmt.Errorf("file store: put %s: rename into place: %w", key, full(err))
		}
	}
	if s.sync {
		if err := s.syncDirGrouped(parent); err != nil {
			return fmt.Errorf("file store: put %s: sync directory: %w", key, full(err))
		}
	}
	return nil
}

// putLinked writes a new object through the linked fast path and reports whether it did; false
// with no error means Put must take the temporary-file path (the key exists, or the fast path
// is unavailable).
//
// It creates parent when missing: the rename path needs it too.
func (s *Store) putLinked(parent, base string, data []byte) (bool, error) {
	if parent == "." {
		return s.linked(putLinked(s.top, base, data, s.sync))
	}
	for try := 0; ; try++ {
		d, kept, err := s.openDir(parent)
		if err != nil {
			return false, fmt.Errorf("create directory: %w", err)
		}
		err = putLinked(d, base, data, s.sync)
		if !kept {
			_ = d.Close()
		} else if err != nil && try == 0 && (removedDir(err) || unlinked(d)) {
			// The directory was removed since it was opened: create and open it again, once.
			s.retireDir(parent, d)
			continue
		}
		return s.linked(err)
	}
}

// linked turns what putLinked returned into putLinked's answer.
func (s *Store) linked(err error) (bool, error) {
	if errors.Is(err, errNotLinked) || errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err == nil && s.sync {
		s.synced("file")
	}
	return err == nil, err
}

// errNotLinked says the linked fast path of Put is unavailable here.
var errNotLinked = errors.New("file store: unnamed files are not supported here")

// writeTemp writes data to a new temporary file in dir (relative to the root) and returns its
// name. When anything fails the file is removed again and the name is "".
func (s *Store) writeTemp(dir string, data []byte) (string, error) {
	name := path.Join(dir, newTempName())
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil && s.sync {
		if err = f.Sync(); err == nil {
			s.synced("file")
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = s.root.Remove(name)
		return "", err
	}
	return name, nil
}

// newTempName returns a fresh temporary file name of this process.
func newTempName() string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand documents it)
	return tempPrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:])
}

// RemoveStaleTemp removes the temporary files that writes left behind when their process died
// mid-write, and returns how many it removed. A temporary file is stale when the process that
// wrote it is this one (a restarted container often gets its predecessor's id) or no longer
// runs, when its name carries no process id (an older version wrote it), or when it is older
// than an hour; the files of another live process sharing the directory are left alone. New
// calls it; it is safe to call at any time, also concurrently with Put.
func (s *Store) RemoveStaleTemp(now time.Time) (int, error) {
	removed := 0
	var errs []error
	for _, dir := range []string{tempDir, "."} {
		d, err := s.root.Open(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("file store: open %s: %w", dir, err))
			continue
		}
		entries, err := d.ReadDir(-1)
		_ = d.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("file store: read %s: %w", dir, err))
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasPrefix(e.Name(), tempPrefix) {
				continue
			}
			info, err := e.Info()
			if err != nil || !staleTemp(e.Name(), info.ModTime(), now) {
				continue
			}
			// A racing Put of this process may have renamed it away meanwhile: that is fine.
			if err := s.root.Remove(path.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("file store: remove %s: %w", path.Join(dir, e.Name()), err))
				continue
			}
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// staleTemp reports whether the temporary file name, last modified at mod, belongs to no write
// under way.
func staleTemp(name string, mod, now time.Time) bool {
	if now.Sub(mod) > staleTempAge {
		return true
	}
	pidText, _, ok := strings.Cut(strings.TrimPrefix(name, tempPrefix), "-")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 {
		return true
	}
	return pid == os.Getpid() || !processRunning(pid)
}

// full returns err marked with pipeline.ErrStorageFull when it says the file system is out of
// space or quota, and err unchanged otherwise.
func full(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", err, pipeline.ErrStorageFull)
	}
	return err
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr == nil {
		s.synced("dir")
	}
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

// Exists reports whether a regular file is under key (pipeline.BlobStatter). A directory or
// special file there is not an object: false.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	name, err := checkKey(key)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("file store: stat %s: %w", key, err)
	}
	if path.Dir(name) == "." {
		// At the top level (where results go), through the handle the store keeps: one
		// system call, without the walk of the root.
		regular, err := statAt(s.top, name)
		if !errors.Is(err, errNotLinked) {
			if err != nil {
				return false, fmt.Errorf("file store: stat %s: %w", key, err)
			}
			return regular, nil
		}
	}
	info, err := s.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("file store: stat %s: %w", key, err)
	}
	return info.Mode().IsRegular(), nil
}

// Check reports whether the directory exists and is writable, by creating and removing a
// small file in it. It is the store's readiness probe (pipeline.Checker).
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store: check %s: %w", s.dir, err)
	}
	name, err := s.writeTemp(".", []byte("ok"))
	if err != nil {
		return fmt.Errorf("file store: %s is not writable (check it exists, its permissions and free space): %w", s.dir, full(err))
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
