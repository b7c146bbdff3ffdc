package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
)

// Append adds data at the end of the object under key, creating it (and its directories) when
// missing, in one write to a file opened O_APPEND, so that appends from any number of
// goroutines or processes do not interleave. With Config.Sync the file, and the directory of
// a file it created, are fsynced before Append returns. A process killed during an append may
// leave its data partly written at the end of the object. It implements pipeline.BlobAppender.
func (s *Store) Append(ctx context.Context, key string, data []byte) error {
	name, err := checkKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store: append %s: %w", key, err)
	}
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_APPEND, filePerm)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		parent := path.Dir(name)
		if parent != "." {
			if err := s.root.MkdirAll(parent, dirPerm); err != nil {
				return fmt.Errorf("file store: append %s: create directory: %w", key, full(err))
			}
		}
		f, err = s.root.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
		created = true
	}
	if err != nil {
		return fmt.Errorf("file store: append %s (check %s is writable): %w", key, s.dir, full(err))
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
		return fmt.Errorf("file store: append %s (check %s has space): %w", key, s.dir, full(err))
	}
	if created && s.sync {
		if err := s.syncDir(path.Dir(name)); err != nil {
			return fmt.Errorf("file store: append %s: sync directory: %w", key, full(err))
		}
	}
	return nil
}
