// Package clean makes text storable by every driver: PostgreSQL's text and
// jsonb types reject NUL and invalid UTF-8, and one such string would fail a
// whole capture batch. Both drivers clean the same way so they read back the
// same. Request and response bodies are stored as bytes and never cleaned.
package clean

import (
	"strings"
	"unicode/utf8"

	"github.com/foundryhq/foundry/store"
)

// Text returns s with NUL bytes and invalid UTF-8 replaced by U+FFFD.
func Text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Texts cleans every element, copying the slice only when one changes.
func Texts(ss []string) []string {
	for i, s := range ss {
		if c := Text(s); c != s {
			out := make([]string, len(ss))
			copy(out, ss[:i])
			for j := i; j < len(ss); j++ {
				out[j] = Text(ss[j])
			}
			return out
		}
	}
	return ss
}

// Map cleans keys and values, copying the map only when one changes.
func Map(m map[string]string) map[string]string {
	for k, v := range m {
		if Text(k) != k || Text(v) != v {
			out := make(map[string]string, len(m))
			for k, v := range m {
				out[Text(k)] = Text(v)
			}
			return out
		}
	}
	return m
}

// Record cleans every text field of r.
func Record(r store.Record) store.Record {
	for _, p := range []*string{&r.ID, &r.Project, &r.KeyID, &r.Endpoint, &r.Route, &r.Provider, &r.Model, &r.Error, &r.User, &r.ParentID} {
		*p = Text(*p)
	}
	r.Tags = Texts(r.Tags)
	r.Metadata = Map(r.Metadata)
	return r
}

// Feedback cleans every text field of f.
func Feedback(f store.Feedback) store.Feedback {
	f.RequestID, f.Label, f.Comment = Text(f.RequestID), Text(f.Label), Text(f.Comment)
	return f
}

// Key cleans every text field of k.
func Key(k store.Key) store.Key {
	k.ID, k.Name, k.Project, k.Prefix, k.Hash = Text(k.ID), Text(k.Name), Text(k.Project), Text(k.Prefix), Text(k.Hash)
	return k
}

// Query cleans every text filter of q, so a filter matches the cleaned text
// that was stored.
func Query(q store.Query) store.Query {
	q.Project, q.Status, q.User, q.Cursor = Text(q.Project), Text(q.Status), Text(q.User), Text(q.Cursor)
	q.Routes, q.Models, q.Providers, q.Tags = Texts(q.Routes), Texts(q.Models), Texts(q.Providers), Texts(q.Tags)
	q.Metadata = Map(q.Metadata)
	return q
}
