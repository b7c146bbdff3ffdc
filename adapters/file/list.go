package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// List returns, sorted, the keys of the objects whose key starts with prefix, a slash-ended
// folder such as "archive/2026/11/". Temporary files of writes in progress are not objects. It
// implements pipeline.BlobLister.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	dir := strings.TrimSuffix(prefix, "/")
	if dir == "" {
		dir = "."
	}
	if _, err := checkKey(dir); err != nil && dir != "." {
		return nil, err
	}
	var keys []string
	err := fs.WalkDir(s.root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() && p == tempDir {
			return fs.SkipDir
		}
		if d.Type().IsRegular() && !strings.HasPrefix(path.Base(p), tempPrefix) {
			keys = append(keys, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("file store: list %s: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Delete removes the object under key; a missing object is not an error. It implements
// pipeline.BlobDeleter.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := checkKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store: delete %s: %w", key, err)
	}
	s.closeAppendHandle(name)
	if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file store: delete %s: %w", key, err)
	}
	return nil
}
