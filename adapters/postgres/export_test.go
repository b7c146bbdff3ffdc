package postgres

import "context"

// DropSchema drops schema and everything in it, for tests.
func DropSchema(ctx context.Context, s *Store, schema string) error {
	_, err := s.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	return err
}

// MigrationRows counts the rows of s's schema_migrations, for tests.
func MigrationRows(ctx context.Context, s *Store) (n int, err error) {
	err = s.pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n)
	return n, err
}
