package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// connWhenFree opens a connection of db, trying again for up to wait while the file is busy:
// a connection's first statements (the journal mode, WAL recovery) can meet another process
// or connection opening the same file at that moment with SQLITE_BUSY, which SQLite returns
// there without waiting out busy_timeout.
func connWhenFree(ctx context.Context, db *sql.DB, wait time.Duration) (*sql.Conn, error) {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		conn, err := db.Conn(ctx)
		var se *sqlitedriver.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}
