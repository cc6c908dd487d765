package dataset

import (
	"strings"
	"testing"
)

func TestEveryRefusalPhraseHasAnAnchor(t *testing.T) {
	for _, p := range DefaultRefusalPhrases {
		if !hasAnchor([]byte(strings.ToLower(p))) {
			t.Errorf("%q contains no refusal anchor: add one to refusalAnchors", p)
		}
	}
}
