package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExactMatch(t *testing.T) {
	for _, c := range []struct {
		answer, ref string
		want        float64
	}{
		{"Paris", "Paris", 1},
		{"  Paris\n", "Paris", 1},                 // surrounding whitespace ignored
		{"New \t York\ncity", "New York city", 1}, // runs of whitespace are one space
		{"paris", "Paris", 0},                     // case matters
		{"Paris.", "Paris", 0},                    // punctuation matters
		{"", "", 1},
	} {
		if got := ExactMatch(c.answer, c.ref); got != c.want {
			t.Errorf("ExactMatch(%q, %q) = %v, want %v", c.answer, c.ref, got, c.want)
		}
	}
}

func TestRougeL(t *testing.T) {
	for _, c := range []struct {
		answer, ref string
		want        float64
	}{
		// answer 6 tokens, reference 6, LCS "the cat on the mat" = 5:
		// P = R = 5/6, F1 = 5/6.
		{"the cat sat on the mat", "the cat is on the mat", 5.0 / 6},
		// answer 4 tokens, reference 3, LCS "the fox" = 2: P = 1/2, R = 2/3,
		// F1 = 2·(1/2)(2/3) / (1/2 + 2/3) = (2/3)/(7/6) = 4/7.
		{"the quick brown fox", "the fox jumped", 4.0 / 7},
		// Tokens are lowercased runs of letters and digits: identical.
		{"Hello, World!", "hello world", 1},
		// answer 3 tokens, reference 5, LCS "a c" = 2 (order matters, not
		// "c a"): P = 2/3, R = 2/5, F1 = 2·(2/3)(2/5)/(2/3+2/5) = (8/15)/(16/15) = 1/2.
		{"a c x", "c a y c z", 0.5},
		{"nothing shared", "at all", 0},
		{"", "something", 0},
		{"", "", 1},
	} {
		if got := RougeL(c.answer, c.ref); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("RougeL(%q, %q) = %v, want %v", c.answer, c.ref, got, c.want)
		}
	}
}

func TestJSONScores(t *testing.T) {
	ref := `{"name": "Ada", "age": 36, "tags": ["x", "y"], "city": "London"}`
	for _, c := range []struct {
		name, answer string
		valid        bool
		fields       map[string]bool
		acc          float64
	}{
		// name, age (36 = 36.0) and city match; tags differ in order: 3/4.
		{"fenced, extra field", "```json\n{\"name\":\"Ada\",\"age\":36.0,\"tags\":[\"y\",\"x\"],\"city\":\"London\",\"extra\":1}\n```", true,
			map[string]bool{"name": true, "age": true, "tags": false, "city": true}, 0.75},
		{"all equal, other order", `{"city":"London","tags":["x","y"],"age":36,"name":"Ada"}`, true,
			map[string]bool{"name": true, "age": true, "tags": true, "city": true}, 1},
		// only city matches ("36" is a string, not the number 36): 1/4.
		{"types differ", `{"name":"ada","age":"36","city":"London"}`, true,
			map[string]bool{"name": false, "age": false, "tags": false, "city": true}, 0.25},
		{"not JSON", `name: Ada`, false, map[string]bool{"name": false, "age": false, "tags": false, "city": false}, 0},
		{"trailing text", `{"name":"Ada"} and more`, false, map[string]bool{"name": false, "age": false, "tags": false, "city": false}, 0},
		{"an array", `["Ada"]`, true, map[string]bool{"name": false, "age": false, "tags": false, "city": false}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := Score(c.answer, ref)
			if s.JSONValid == nil || *s.JSONValid != c.valid {
				t.Errorf("JSONValid = %v, want %v", s.JSONValid, c.valid)
			}
			if s.FieldAccuracy == nil || *s.FieldAccuracy != c.acc {
				t.Errorf("FieldAccuracy = %v, want %v", s.FieldAccuracy, c.acc)
			}
			for f, want := range c.fields {
				if got, ok := s.Fields[f]; !ok || got != want {
					t.Errorf("field %s: %v (present %v), want %v", f, got, ok, want)
				}
			}
			if len(s.Fields) != len(c.fields) {
				t.Errorf("fields %v, want exactly the reference's %v", s.Fields, c.fields)
			}
		})
	}
	// Plain-text references have no JSON metrics; array references have
	// validity but no fields.
	if s := Score("42", "42"); s.JSONValid != nil || s.FieldAccuracy != nil {
		t.Errorf("plain reference got JSON metrics: %+v", s)
	}
	if s := Score("[1, 2]", "[1,2]"); s.JSONValid == nil || !*s.JSONValid || s.FieldAccuracy != nil {
		t.Errorf("array reference: %+v", s)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	// Linear interpolation between ranks: p50 of 1..5 is 3; p95 is at rank
	// 0.95·4 = 3.8, so 4 + 0.8·(5−4) = 4.8.
	if p := Percentile(xs, 0.5); p != 3 {
		t.Errorf("p50 = %v, want 3", p)
	}
	if p := Percentile(xs, 0.95); math.Abs(p-4.8) > 1e-12 {
		t.Errorf("p95 = %v, want 4.8", p)
	}
	if xs[0] != 5 {
		t.Error("Percentile sorted its input")
	}
}

func TestBootstrapCoversTheTrueMean(t *testing.T) {
	// 200 synthetic samples of 300 Bernoulli(0.7) draws: a 95% interval
	// should contain 0.7 about 190 times. Seeded, so the count is fixed;
	// the bounds allow for the binomial spread of a correct method
	// (sd = sqrt(200·0.95·0.05) ≈ 3.1) and fail a broken one.
	const p, n, trials = 0.7, 300, 200
	rng := rand.New(rand.NewPCG(1, 2))
	covered := 0
	for i := range trials {
		xs := make([]float64, n)
		for j := range xs {
			if rng.Float64() < p {
				xs[j] = 1
			}
		}
		st := Bootstrap(xs, 1000, uint64(i))
		if st.Lo > st.Mean || st.Hi < st.Mean {
			t.Fatalf("interval [%v, %v] does not contain its own mean %v", st.Lo, st.Hi, st.Mean)
		}
		// The half-width of a proportion's 95% interval is about 1.96·sqrt(p(1-p)/n) ≈ 0.052.
		if w := (st.Hi - st.Lo) / 2; w < 0.035 || w > 0.07 {
			t.Fatalf("half-width %v, want about 0.052", w)
		}
		if st.Lo <= p && p <= st.Hi {
			covered++
		}
	}
	if covered < 180 || covered > 198 {
		t.Errorf("the interval contained the true mean in %d of %d samples, want about 190", covered, trials)
	}
}

func TestBootstrapIsDeterministic(t *testing.T) {
	xs := []float64{0.1, 0.5, 0.9, 0.3, 0.3, 0.8, 1, 0}
	a, b := Bootstrap(xs, 1000, 7), Bootstrap(xs, 1000, 7)
	if a != b {
		t.Errorf("same seed, different intervals: %+v vs %+v", a, b)
	}
	if c := Bootstrap(xs, 1000, 8); c == a {
		t.Errorf("another seed gave the identical interval %+v", c)
	}
	if a.N != len(xs) || math.Abs(a.Mean-0.4875) > 1e-12 {
		t.Errorf("mean %v n %d, want 0.4875 and %d", a.Mean, a.N, len(xs))
	}
	if s := Bootstrap(nil, 1000, 1); s != (Stat{}) {
		t.Errorf("empty input: %+v", s)
	}
}

func TestDiffHTML(t *testing.T) {
	got := string(diffHTML("the big cat <sat>", "the cat sat"))
	want := "the <ins>big</ins> cat <del>sat</del> <ins>&lt;sat&gt;</ins> "
	if got != want {
		t.Errorf("diff = %q, want %q", got, want)
	}
}
