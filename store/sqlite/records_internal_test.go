package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeLabelsMatchesJSON holds the split of plain tags and metadata to
// encoding/json, on what encodeLabels writes and on what must fall back.
func TestDecodeLabelsMatchesJSON(t *testing.T) {
	for _, s := range []string{
		`["prod"]`, `["prod","eu","team a","ünï"]`, `[]`, `[""]`, `["a\"b"]`, `["a\u00e9"]`, `[ "a" ]`,
		`["a",]`, `["a"`, `["a" "b"]`, "[\"bad \xff\"]", `[1]`, `null`,
	} {
		var got, want []string
		gerr, werr := decodeTags(s, &got), json.Unmarshal([]byte(s), &want)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("tags %s: got %#v (%v), json %#v (%v)", s, got, gerr, want, werr)
		}
	}
	for _, s := range []string{
		`{"team":"billing"}`, `{"a":"1","b":"","":"x"}`, `{}`, `{"a":"1","a":"2"}`, `{"a":"1",}`, `{"a":"1","b"}`,
		`{"a":1}`, `{"a":"\n"}`, `{"a","b"}`, `{"a":"b":"c"}`, `{ "a":"b"}`, "{\"a\":\"\xff\"}", `null`,
	} {
		var got, want map[string]string
		gerr, werr := decodeMetadata(s, &got), json.Unmarshal([]byte(s), &want)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("metadata %s: got %#v (%v), json %#v (%v)", s, got, gerr, want, werr)
		}
	}
}
