package gateway_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkChat measures one non-streaming call through the gateway with
// capture into SQLite, against the zero-latency fake upstream (all on loopback).
func BenchmarkChat(b *testing.B) {
	e := newEnv(b, envOpts{})
	e.up.Record(false)
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a support assistant. Answer in JSON."},{"role":"user","content":"My order 12345 has not arrived, can you check where it is?"}],"temperature":0.2}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(e.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
