package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/foundryhq/foundry/store"
)

// Record returns a realistic captured chat completion, about 1.5 KB of
// request and response JSON, for benchmarks and bulk tests. It depends only
// on i and at, so callers can predict what they stored.
func Record(i int, at time.Time) store.Record {
	routes := []string{"support-bot", "summarize", "classify", "extract"}
	models := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "qwen2.5-7b-lora"}
	providers := []string{"openai", "openai", "anthropic", "engine"}
	question := fmt.Sprintf("Ticket #%d: my invoice for order %d was charged twice, once on the 3rd and "+
		"once on the 5th. I have attached both receipts. Please refund the duplicate charge and confirm "+
		"by email. %s", 100000+i, 7000+i*13, strings.Repeat("Thanks for your help. ", 8))
	answer := fmt.Sprintf(`{"category":"billing","priority":"high","refund":true,"order":%d,`+
		`"summary":"Customer was charged twice for the same order and asks for a refund of the duplicate.",`+
		`"reply":"Hello, I am sorry about the double charge. I have refunded the duplicate payment; `+
		`it will appear within 5 business days. %s"}`, 7000+i*13, strings.Repeat("Kind regards. ", 6))
	req, _ := json.Marshal(map[string]any{
		"model": routes[i%len(routes)],
		"messages": []map[string]string{
			{"role": "system", "content": "You triage support tickets. Answer with one JSON object with the fields category, priority, refund, order, summary and reply."},
			{"role": "user", "content": question},
		},
		"temperature":     0.2,
		"response_format": map[string]string{"type": "json_object"},
		"user":            fmt.Sprintf("user-%d", i%50),
	})
	resp, _ := json.Marshal(map[string]any{
		"id":      fmt.Sprintf("chatcmpl-%08d", i),
		"object":  "chat.completion",
		"created": at.Unix(),
		"model":   models[i%len(models)],
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]string{"role": "assistant", "content": answer},
			"finish_reason": "stop",
		}},
		"usage": map[string]int{"prompt_tokens": 180 + i%40, "completion_tokens": 95 + i%30, "total_tokens": 275 + i%70},
	})
	status := 200
	errMsg := ""
	if i%50 == 49 {
		status, errMsg = 429, "upstream rate limited"
	}
	return store.Record{
		ID:               fmt.Sprintf("req-%010d", i),
		CreatedAt:        at,
		Project:          []string{"acme", "globex", ""}[i%3],
		KeyID:            fmt.Sprintf("key-%d", i%3),
		Endpoint:         "chat.completions",
		Route:            routes[i%len(routes)],
		Provider:         providers[i%len(providers)],
		Model:            models[i%len(models)],
		Stream:           i%4 == 0,
		Status:           status,
		Error:            errMsg,
		Request:          req,
		Response:         resp,
		Latency:          time.Duration(400+i%900) * time.Millisecond,
		TTFT:             time.Duration(90+i%200) * time.Millisecond,
		PromptTokens:     180 + i%40,
		CompletionTokens: 95 + i%30,
		CostUSD:          0.00125 + float64(i%10)*0.0001,
		User:             fmt.Sprintf("user-%d", i%50),
		Tags:             []string{"prod", []string{"web", "mobile"}[i%2]},
		Metadata:         map[string]string{"team": []string{"red", "blue"}[i%2], "ticket": fmt.Sprint(100000 + i)},
		Attempts:         1,
	}
}
