package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/internal/clean"
)

// PutRoute stores rv as the next version of its route; store.ErrConflict
// when rv.Version is not the latest version + 1.
func (db *DB) PutRoute(ctx context.Context, rv store.RouteVersion) error {
	rv.Name, rv.Actor, rv.Comment = clean.Text(rv.Name), clean.Text(rv.Actor), clean.Text(rv.Comment)
	if rv.CreatedAt.IsZero() {
		rv.CreatedAt = time.Now()
	}
	if rv.Version < 1 {
		return fmt.Errorf("put route %q: version %d: versions start at 1", rv.Name, rv.Version)
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO routes (name, version, policy, actor, comment, created_at)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6
		WHERE coalesce((SELECT max(version) FROM routes WHERE name = ?1), 0) = ?2 - 1`,
		rv.Name, rv.Version, []byte(rv.Policy), rv.Actor, rv.Comment, micros(rv.CreatedAt))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("put route %q version %d: %w", rv.Name, rv.Version, store.ErrConflict)
		}
		return fmt.Errorf("put route %q version %d: %w", rv.Name, rv.Version, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("put route %q version %d: %w", rv.Name, rv.Version, err)
	} else if n == 0 {
		return fmt.Errorf("put route %q version %d: %w (it is no longer the next version; reload the route and try again)", rv.Name, rv.Version, store.ErrConflict)
	}
	return nil
}

const selectRoute = `SELECT name, version, policy, actor, comment, created_at FROM routes `

// GetRoute returns the latest version of route name, or store.ErrNotFound.
func (db *DB) GetRoute(ctx context.Context, name string) (store.RouteVersion, error) {
	name = clean.Text(name)
	rv, err := scanRoute(db.r.QueryRowContext(ctx, selectRoute+"WHERE name = ? ORDER BY version DESC LIMIT 1", name))
	if err != nil {
		return store.RouteVersion{}, fmt.Errorf("get route %q: %w", name, errNoRows(err))
	}
	return rv, nil
}

// ListRoutes returns the latest version of every route, by name.
func (db *DB) ListRoutes(ctx context.Context) ([]store.RouteVersion, error) {
	return db.routes(ctx, "list routes", selectRoute+`r WHERE version = (SELECT max(version) FROM routes WHERE name = r.name) ORDER BY name`)
}

// RouteHistory returns every version of route name, oldest first.
func (db *DB) RouteHistory(ctx context.Context, name string) ([]store.RouteVersion, error) {
	name = clean.Text(name)
	out, err := db.routes(ctx, fmt.Sprintf("route history of %q", name), selectRoute+"WHERE name = ? ORDER BY version", name)
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("route history of %q: %w", name, store.ErrNotFound)
	}
	return out, err
}

func (db *DB) routes(ctx context.Context, what, query string, args ...any) ([]store.RouteVersion, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []store.RouteVersion
	for rows.Next() {
		rv, err := scanRoute(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, rv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func scanRoute(row interface{ Scan(...any) error }) (store.RouteVersion, error) {
	var (
		rv      store.RouteVersion
		policy  []byte
		created int64
	)
	if err := row.Scan(&rv.Name, &rv.Version, &policy, &rv.Actor, &rv.Comment, &created); err != nil {
		return store.RouteVersion{}, err
	}
	rv.Policy = policy
	rv.CreatedAt = fromMicros(created)
	return rv, nil
}
