package api

import (
	"bytes"
	"encoding/json"
	"sort"
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
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	var extra Extra
	for k, v := range all {
		if names[k] {
			continue
		}
		if extra == nil {
			extra = Extra{}
		}
		extra[k] = v
	}
	return extra, nil
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
