package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The session cookie is "<expiry unix seconds>.<hex HMAC>" signed with a key
// derived from the admin key: it proves the browser knew the key without
// holding it, expires on its own, and dies when the admin key changes.
const (
	sessionCookie = "foundry_session"
	sessionTTL    = 7 * 24 * time.Hour
)

func deriveSessionKey(adminKey string) []byte {
	m := hmac.New(sha256.New, []byte(adminKey))
	m.Write([]byte("foundry dashboard session key v1"))
	return m.Sum(nil)
}

func (h *Handler) sign(expiry int64) string {
	m := hmac.New(sha256.New, h.sessionKey)
	m.Write([]byte("session:" + strconv.FormatInt(expiry, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

func (h *Handler) newSession() string {
	exp := h.opts.Now().Add(sessionTTL).Unix()
	return strconv.FormatInt(exp, 10) + "." + h.sign(exp)
}

func (h *Handler) validSession(v string) bool {
	expS, sig, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || h.opts.Now().Unix() >= exp {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(h.sign(exp)))
}

// authed reports whether r may see the dashboard.
func (h *Handler) authed(r *http.Request) bool {
	if h.opts.AdminKey == "" {
		return true
	}
	c, err := r.Cookie(sessionCookie)
	return err == nil && h.validSession(c.Value)
}

// private guards a page: without a session it sends the browser to the login
// form (htmx requests get HX-Redirect, so a poll after expiry lands there too).
func (h *Handler) private(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.authed(r) {
			next(w, r)
			return
		}
		target := "/ui/login?next=" + url.QueryEscape(r.URL.RequestURI())
		if isHTMX(r) {
			back := "/"
			if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil {
				back = u.RequestURI()
			}
			target = "/ui/login?next=" + url.QueryEscape(back)
			w.Header().Set("HX-Redirect", target)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet {
			h.fail(w, r, http.StatusUnauthorized, "Your dashboard session has ended: log in again.", nil)
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

type loginData struct {
	Next  string
	Error string
}

func (h *Handler) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	if h.opts.AdminKey == "" || h.authed(r) {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.render(w, r, http.StatusOK, "login", "", "Log in", loginData{Next: localPath(r.URL.Query().Get("next"))})
}

func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.FormValue("next"))
	if h.opts.AdminKey == "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) {
		h.fail(w, r, http.StatusForbidden, "Log in from the dashboard itself, not from another site.", nil)
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	if subtle.ConstantTimeCompare([]byte(key), []byte(h.opts.AdminKey)) != 1 {
		h.log.Warn("dashboard: login with a wrong admin key", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "login", "", "Log in", loginData{Next: next,
			Error: "That is not the admin key. Use the value of FOUNDRY_ADMIN_KEY (or admin_key in the config) this gateway runs with."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: h.newSession(), Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.fail(w, r, http.StatusForbidden, "Log out from the dashboard itself, not from another site.", nil)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// localPath keeps a post-login redirect on this site: a path, never a URL
// to another host ("//evil.example" included).
func localPath(p string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.HasPrefix(p, "/ui/login") {
		return "/"
	}
	return p
}
