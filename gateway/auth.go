package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/store"
)

// Identity is who is calling: the admin, a virtual key, or nobody (open mode).
type Identity struct {
	Admin   bool
	KeyID   string
	Project string
}

// IdentityFrom returns the caller of the request in ctx.
func IdentityFrom(ctx context.Context) Identity {
	id, _ := ctx.Value(ctxIdentity).(Identity)
	return id
}

// HashKey returns the stored form of a virtual key's secret.
func HashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// authRequired reports whether requests must carry a key. While no virtual
// key is known, the store is re-checked at most every keyCacheTTL (off the
// request path), so a key made with `foundry keys create` against the same
// database turns auth on without a restart.
func (s *Server) authRequired() bool {
	if s.opts.AdminKey != "" || s.keysExist.Load() {
		return true
	}
	if st := s.opts.Store; st != nil {
		now := time.Now().UnixNano()
		last := s.keysChecked.Load()
		if now-last > int64(keyCacheTTL) && s.keysChecked.CompareAndSwap(last, now) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if keys, err := st.ListKeys(ctx, ""); err == nil && len(keys) > 0 {
					s.keysExist.Store(true)
				}
			}()
		}
	}
	return false
}

const keyCacheTTL = 10 * time.Second

// auth wraps h. Admin-only routes (/api/*) need the admin key when one is
// configured; without one they are open, which is safe because the server
// then refuses to listen beyond loopback (CheckBind). Other routes (/v1/*)
// are open until an admin key or a virtual key exists; then they need the
// admin key or a live virtual key.
func (s *Server) auth(adminOnly bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		open := !s.authRequired()
		if adminOnly {
			open = s.opts.AdminKey == ""
		}
		if open {
			h(w, r.WithContext(context.WithValue(r.Context(), ctxIdentity, Identity{Admin: true})))
			return
		}
		secret := bearer(r)
		if secret == "" {
			s.metrics.reject("auth")
			api.WriteError(w, &api.Error{Status: http.StatusUnauthorized, Code: "missing_api_key",
				Message: "missing API key: send \"Authorization: Bearer <key>\" with a Foundry virtual key (foundry keys create) or the admin key"})
			return
		}
		if s.opts.AdminKey != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.AdminKey)) == 1 {
			h(w, r.WithContext(context.WithValue(r.Context(), ctxIdentity, Identity{Admin: true})))
			return
		}
		k, ok := s.lookupKey(r.Context(), secret)
		if adminOnly && ok {
			s.metrics.reject("auth")
			api.WriteError(w, &api.Error{Status: http.StatusForbidden, Type: "permission_error", Code: "admin_key_required",
				Message: "this endpoint needs the admin key (FOUNDRY_ADMIN_KEY); virtual keys may only call /v1/* and /api/v1/feedback"})
			return
		}
		if !ok {
			s.metrics.reject("auth")
			api.WriteError(w, &api.Error{Status: http.StatusUnauthorized, Code: "invalid_api_key",
				Message: "invalid or revoked API key: create one with `foundry keys create` (keys are shown once)"})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxIdentity, Identity{KeyID: k.ID, Project: k.Project})))
	}
}

func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}

func (s *Server) lookupKey(ctx context.Context, secret string) (store.Key, bool) {
	if s.opts.Store == nil {
		return store.Key{}, false
	}
	hash := HashKey(secret)
	now := time.Now()
	if v, ok := s.keyCache.Load(hash); ok {
		c := v.(cachedKey)
		if now.Before(c.expires) {
			return c.key, c.ok
		}
	}
	k, err := s.opts.Store.KeyByHash(ctx, hash)
	ok := err == nil && k.RevokedAt == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("look up API key", "err", err)
		return store.Key{}, false // not cached: a store hiccup must not stick
	}
	s.keyCache.Store(hash, cachedKey{key: k, ok: ok, expires: now.Add(keyCacheTTL)})
	if ok && (k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute) {
		go func() {
			tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.opts.Store.TouchKey(tctx, k.ID, now)
		}()
	}
	return k, ok
}
