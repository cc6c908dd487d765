package api

import (
	"bytes"
	"encoding/json"
	"sort"
	"unicode/utf8"
)

// Extra holds the JSON fields of an object that Foundry's types do not name,
// so that a parse → marshal round trip sends them on unchanged to an
// OpenAI-compatible upstream (vendor extensions, fields newer than Foundry).
type Extra map[string]json.RawMessage

// unmarshalExtra decodes data into known (a pointer to an alias type without
// custom methods) and returns the fields whose keys are not in names.
func unmarshalExtra(data []byte, known any, names map[string]bool) (Extra, error) {
	if err := json.Unmarshal(data, known); err != nil {
		return nil, err
	}
	// data is valid JSON now; find the unknown top-level keys with a plain
	// byte scan instead of a second full decode (this runs for every
	// message of every request on the gateway's hot path).
	return scanExtra(data, names), nil
}

// scanExtra returns the top-level members of the JSON object in data (which
// must be valid JSON) whose keys are not in names; nil for non-objects.
func scanExtra(data []byte, names map[string]bool) Extra {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil
	}
	var extra Extra
	i++
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] == '}' {
			return extra
		}
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		ks := i
		i = skipString(data, i)
		rawKey := data[ks:i]
		i = skipSpace(data, i)
		i = skipSpace(data, i+1) // ':'
		vs := i
		i = skipValue(data, i)
		key := string(rawKey[1 : len(rawKey)-1])
		if bytes.IndexByte(rawKey, '\\') >= 0 || !utf8.Valid(rawKey) { // decode as encoding/json does
			_ = json.Unmarshal(rawKey, &key)
		}
		if !names[key] {
			if extra == nil {
				extra = Extra{}
			}
			extra[key] = json.RawMessage(bytes.Clone(data[vs:i]))
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default:
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
			i++
		}
		return i
	}
}

// marshalExtra marshals known and appends the extra fields (sorted, so the
// output is deterministic) that known does not already carry.
func marshalExtra(known any, extra Extra, names map[string]bool) ([]byte, error) {
	b, err := json.Marshal(known)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if !names[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return b, nil
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Grow(len(b) + 64*len(keys))
	buf.Write(b[:len(b)-1]) // drop the closing brace
	first := len(b) == 2    // "{}"
	for _, k := range keys {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		v := extra[k]
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// jsonNames returns the set of JSON field names of a struct type's tags,
// computed once per type by the callers below.
func names(ns ...string) map[string]bool {
	m := make(map[string]bool, len(ns))
	for _, n := range ns {
		m[n] = true
	}
	return m
}

func jsonUnmarshalString(v []byte, s *string) bool { return json.Unmarshal(v, s) == nil }

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
