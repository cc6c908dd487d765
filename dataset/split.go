package dataset

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// SplitSpec configures the Split stage.
type SplitSpec struct {
	// Train, Val and Test are the proportions (normalised to sum to 1;
	// default 0.8/0.1/0.1).
	Train float64 `yaml:"train" json:"train"`
	Val   float64 `yaml:"val" json:"val"`
	Test  float64 `yaml:"test" json:"test"`
	// Key is what the assignment hashes: "id" (default: the record id, or
	// file:line for imported rows) or "prompt" (so the same prompt never lands
	// in two splits).
	Key string `yaml:"key" json:"key,omitempty"`
	// Stratify names a field whose values each get the proportions: "route",
	// "model", "provider", "source", "tag" (first tag), or "metadata.<key>".
	Stratify string `yaml:"stratify" json:"stratify,omitempty"`
	// Seed changes the assignment while keeping it deterministic.
	Seed string `yaml:"seed" json:"seed,omitempty"`
}

// Split names.
var Splits = []string{"train", "val", "test"}

// Split builds the split stage. Each example's split is chosen by a hash of
// its key, so it is stable across builds (a row in test stays in test when
// the dataset grows). Within each stratum a quota corrects the hash's
// random drift: when the hashed split already holds more than its share of
// the stratum, the row goes to the split furthest below its share, which
// keeps every stratum within about one row of the proportions. The stage
// holds one counter per stratum and split, never rows.
func Split(spec SplitSpec) (Stage, error) {
	if spec.Train == 0 && spec.Val == 0 && spec.Test == 0 {
		spec.Train, spec.Val, spec.Test = 0.8, 0.1, 0.1
	}
	if spec.Train < 0 || spec.Val < 0 || spec.Test < 0 {
		return nil, fmt.Errorf("split proportions must not be negative (train %v, val %v, test %v)", spec.Train, spec.Val, spec.Test)
	}
	sum := spec.Train + spec.Val + spec.Test
	p := [3]float64{spec.Train / sum, spec.Val / sum, spec.Test / sum}
	switch spec.Key {
	case "", "id", "prompt":
	default:
		return nil, fmt.Errorf("split.key %q must be id or prompt", spec.Key)
	}
	if f := spec.Stratify; f != "" && f != "route" && f != "model" && f != "provider" && f != "source" && f != "tag" && !strings.HasPrefix(f, "metadata.") {
		return nil, fmt.Errorf("split.stratify %q must be route, model, provider, source, tag or metadata.<key>", f)
	}
	counts := map[string]*[4]int64{} // per stratum: rows per split, total
	return RowStage{StageName: "split", Decide: func(_ context.Context, ex *Example, out *Out) (string, string, error) {
		key := ex.Meta.ID
		if spec.Key == "prompt" {
			key = ex.Text("prompt")
		}
		u := float64(xxhash.Sum64String(spec.Seed+"\x00"+key)>>11) / (1 << 53)
		k := 0
		for acc := p[0]; k < 2 && u >= acc; acc += p[k] {
			k++
		}
		stratum := stratumOf(ex, spec.Stratify)
		c := counts[stratum]
		if c == nil {
			c = new([4]int64)
			counts[stratum] = c
		}
		c[3]++
		n := float64(c[3])
		if float64(c[k])+1 > p[k]*n+1 { // over its share: give the row to the split furthest below
			best, deficit := k, math.Inf(-1)
			for j := range 3 {
				if d := p[j]*n - float64(c[j]); p[j] > 0 && d > deficit {
					best, deficit = j, d
				}
			}
			k = best
		}
		c[k]++
		ex.Split = Splits[k]
		out.Count(Splits[k], 1)
		return "", "", nil
	}}, nil
}

func stratumOf(ex *Example, field string) string {
	switch {
	case field == "":
		return ""
	case field == "route":
		return ex.Meta.Route
	case field == "model":
		return ex.Meta.Model
	case field == "provider":
		return ex.Meta.Provider
	case field == "source":
		return ex.Meta.Source
	case field == "tag":
		if len(ex.Meta.Tags) > 0 {
			return ex.Meta.Tags[0]
		}
		return ""
	case strings.HasPrefix(field, "metadata."):
		return ex.Meta.Metadata[strings.TrimPrefix(field, "metadata.")]
	}
	return ""
}
