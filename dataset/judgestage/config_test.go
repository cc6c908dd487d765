package judgestage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/dataset/judgestage"
)

// TestBadSections: a mistaken judge: or best_of_n: section fails the build
// before any row is read, naming the field.
func TestBadSections(t *testing.T) {
	for _, c := range []struct {
		name, sections, want string
	}{
		{"misspelt field", `judge: {model: m, min_scor: 7}`, `unknown field "min_scor"`},
		{"no judge model", `judge: {min_score: 7}`, "model: name the judge model"},
		{"score out of range", `judge: {model: m, min_score: 11}`, "min_score 11"},
		{"wrong type", `judge: {model: m, min_score: high}`, "min_score"},
		{"no teacher", `best_of_n: {n: 4, judge_model: m}`, "model: name the teacher model"},
		{"no judge for best-of-n", `best_of_n: {model: t}`, "judge_model"},
		{"bar out of range", "judge: {model: m}\nbest_of_n: {model: t, bar: 12}", "bar 12"},
		{"too many samples", `best_of_n: {model: t, judge_model: m, n: 500}`, "n 500"},
		{"missing key variable", `judge: {model: m, base_url: "http://example.invalid/v1", api_key_env: FOUNDRY_TEST_UNSET_KEY}`, "FOUNDRY_TEST_UNSET_KEY is not set"},
		{"pairwise without against", `judge: {model: m, mode: pairwise}`, "against: name the model"},
		{"pairwise with min_score", `judge: {model: m, mode: pairwise, against: r, min_score: 7}`, "min_score: a pairwise judge gives no score"},
		{"bad keep", `judge: {model: m, mode: pairwise, against: r, keep: all}`, `keep "all"`},
		{"bad mode", `judge: {model: m, mode: listwise}`, `mode "listwise"`},
		{"against without pairwise", `judge: {model: m, against: r}`, "belong to mode: pairwise"},
		{"pairwise best-of-n with a bar", `best_of_n: {model: t, judge_model: m, select: pairwise, bar: 8}`, "bar 8: select: pairwise"},
		{"bad select", `best_of_n: {model: t, judge_model: m, select: best}`, `select "best"`},
		{"no endpoint", `judge: {model: m}`, "base_url: no endpoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := dataset.ParseSpec("bad.yaml", []byte("name: bad\nsources: [{file: x.jsonl}]\n"+c.sections+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			url := "http://127.0.0.1:1/v1"
			if c.name == "no endpoint" {
				url = ""
			}
			_, err = spec.Stages(context.Background(), judgestage.Plugins(judgestage.Options{BaseURL: url, DataDir: t.TempDir()}), t.TempDir())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to say %q", err, c.want)
			}
		})
	}
}
