package eval

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
)

// Stat is a mean with its bootstrap 95% confidence interval.
type Stat struct {
	Mean float64 `json:"mean"`
	Lo   float64 `json:"lo"` // 2.5th percentile of the resampled means
	Hi   float64 `json:"hi"` // 97.5th percentile
	N    int     `json:"n"`  // observations
}

// Bootstrap returns the mean of xs with a percentile bootstrap 95%
// confidence interval from resamples resamples (1000 when <= 0), drawn
// with a generator seeded by seed: the same inputs and seed give the same
// interval. An empty xs gives the zero Stat.
func Bootstrap(xs []float64, resamples int, seed uint64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	if resamples <= 0 {
		resamples = 1000
	}
	st := Stat{Mean: mean(xs), N: len(xs)}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	means := make([]float64, resamples)
	for i := range means {
		sum := 0.0
		for range xs {
			sum += xs[rng.IntN(len(xs))]
		}
		means[i] = sum / float64(len(xs))
	}
	sort.Float64s(means)
	st.Lo, st.Hi = quantile(means, 0.025), quantile(means, 0.975)
	return st
}

// seedFor derives a metric's own seed, so that an interval does not depend
// on which other metrics were computed before it.
func seedFor(seed int64, parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64() ^ uint64(seed)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// quantile of sorted xs by linear interpolation between closest ranks
// (numpy's default), so that p50 of {1, 2} is 1.5.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// Percentile returns the q-quantile (0..1) of xs, which it does not modify.
func Percentile(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return quantile(s, q)
}
