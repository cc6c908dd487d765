// Package filter holds the parts of a store.Query that both SQL drivers read
// the same way: the status filter, the page size and the opaque cursor.
package filter

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/foundryhq/foundry/store"
)

// Page sizes for ListRecords.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Limit returns the page size a query asks for: 0 (or less) means
// DefaultLimit, and anything above MaxLimit is capped.
func Limit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// StatusRange turns Query.Status into an inclusive range of HTTP codes.
// ok reports whether the query filters on status at all.
func StatusRange(s string) (lo, hi int, ok bool, err error) {
	switch s {
	case "":
		return 0, 0, false, nil
	case "ok":
		return 200, 299, true, nil
	case "error":
		return 400, 999, true, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 999 {
		return 0, 0, false, fmt.Errorf("%w: status %q is not \"ok\", \"error\" or an HTTP code", store.ErrInvalidQuery, s)
	}
	return n, n, true, nil
}

// Cursor is a position in the newest-first order (created_at DESC, id DESC):
// the next page holds the records strictly after it.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Encode returns the opaque form given to clients as Page.NextCursor.
func (c Cursor) Encode() string {
	raw := strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "/" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// Decode parses a cursor made by Encode. An empty string is no cursor.
func Decode(s string) (c Cursor, ok bool, err error) {
	if s == "" {
		return Cursor{}, false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, false, fmt.Errorf("%w: malformed cursor", store.ErrInvalidQuery)
	}
	at, id, found := strings.Cut(string(raw), "/")
	us, err := strconv.ParseInt(at, 10, 64)
	if !found || err != nil {
		return Cursor{}, false, fmt.Errorf("%w: malformed cursor", store.ErrInvalidQuery)
	}
	return Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, true, nil
}

// Micro truncates t to the microsecond precision both drivers store, in UTC.
func Micro(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
