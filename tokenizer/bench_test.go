package tokenizer

import (
	"strings"
	"testing"
)

// BenchmarkEncode encodes the whole corpus per iteration; MB/s is input
// bytes, tokens/s is output tokens.
func BenchmarkEncode(b *testing.B) {
	corpus := strings.Join(readCorpus(b), "\n")
	for _, model := range refModels {
		b.Run(model, func(b *testing.B) {
			tok := loadModel(b, model)
			lines := strings.Split(corpus, "\n")
			n := 0
			b.SetBytes(int64(len(corpus)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, l := range lines {
					n += len(tok.Encode(l, EncodeOptions{}))
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkEncodeCold measures encoding without the per-word cache, on
// text that repeats no word.
func BenchmarkEncodeCold(b *testing.B) {
	corpus := strings.Join(readCorpus(b), "\n")
	for _, model := range refModels {
		b.Run(model, func(b *testing.B) {
			tok := loadModel(b, model)
			b.SetBytes(int64(len(corpus)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tok.model.mu.Lock()
				clear(tok.model.cache)
				tok.model.mu.Unlock()
				tok.Encode(corpus, EncodeOptions{})
			}
		})
	}
}
