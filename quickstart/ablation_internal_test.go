package quickstart

import (
	"strings"
	"testing"

	"github.com/foundryhq/foundry/eval"
)

func TestAblationVerdict(t *testing.T) {
	st := func(mean, lo, hi float64) *eval.Stat { return &eval.Stat{Mean: mean, Lo: lo, Hi: hi, N: 40} }
	for _, c := range []struct {
		name    string
		metrics map[string][2]*eval.Stat
		want    []string
		notWant []string
	}{
		{"curated ahead beyond the noise", map[string][2]*eval.Stat{
			"JSON valid":     {st(1, 0.95, 1), st(0.8, 0.7, 0.9)},
			"field accuracy": {st(0.8, 0.72, 0.88), st(0.75, 0.67, 0.83)},
			"exact match":    {st(0.5, 0.35, 0.65), st(0.45, 0.3, 0.6)},
		}, []string{"curated is better on JSON valid (+20 points)", "no difference beyond the noise of 40 held-out tickets on field accuracy, exact match"}, []string{"raw is better"}},
		{"raw ahead", map[string][2]*eval.Stat{
			"JSON valid":     {st(0.8, 0.7, 0.9), st(1, 0.95, 1)},
			"field accuracy": {st(0.8, 0.72, 0.88), st(0.75, 0.67, 0.83)},
			"exact match":    {st(0.5, 0.35, 0.65), st(0.45, 0.3, 0.6)},
		}, []string{"raw is better on JSON valid (-20 points)"}, []string{"curated is better"}},
	} {
		got := ablationVerdict(40, c.metrics)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: verdict %q lacks %q", c.name, got, w)
			}
		}
		for _, w := range c.notWant {
			if strings.Contains(got, w) {
				t.Errorf("%s: verdict %q says %q", c.name, got, w)
			}
		}
	}
}
