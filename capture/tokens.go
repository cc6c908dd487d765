package capture

import (
	"strings"

	"github.com/tiktoken-go/tokenizer"

	"github.com/foundryhq/foundry/provider"
)

// counter estimates token usage with OpenAI's encodings when an upstream
// reports none. Used only from the writer goroutine; codecs load lazily.
type counter struct {
	o200k, cl100k tokenizer.Codec
}

func (t *counter) codec(model string) tokenizer.Codec {
	if strings.HasPrefix(model, "gpt-4-") || model == "gpt-4" || strings.HasPrefix(model, "gpt-3.5") || strings.HasPrefix(model, "text-embedding") {
		if t.cl100k == nil {
			t.cl100k, _ = tokenizer.Get(tokenizer.Cl100kBase)
		}
		return t.cl100k
	}
	if t.o200k == nil {
		t.o200k, _ = tokenizer.Get(tokenizer.O200kBase)
	}
	return t.o200k
}

func (t *counter) count(c tokenizer.Codec, s string) int {
	if s == "" || c == nil {
		return 0
	}
	n, err := c.Count(s)
	if err != nil {
		return len(s) / 4
	}
	return n
}

// estimate counts prompt and completion tokens the way OpenAI bills chat:
// each message costs its content plus ~3 tokens of framing, plus 3 to prime
// the reply.
func (t *counter) estimate(model string, call *provider.Call) (prompt, completion int) {
	c := t.codec(model)
	if call.Embedding != nil {
		for _, s := range call.Embedding.Texts() {
			prompt += t.count(c, s)
		}
		return prompt, 0
	}
	if call.Chat != nil {
		for _, m := range call.Chat.Messages {
			prompt += 3 + t.count(c, m.Content.String()) + t.count(c, m.Name)
			for _, tc := range m.ToolCalls {
				prompt += t.count(c, tc.Function.Name) + t.count(c, tc.Function.Arguments)
			}
		}
		prompt += 3
		for _, tool := range call.Chat.Tools {
			prompt += t.count(c, tool.Function.Name) + t.count(c, tool.Function.Description) + t.count(c, string(tool.Function.Parameters))
		}
	}
	if call.ChatResponse != nil {
		for _, ch := range call.ChatResponse.Choices {
			completion += t.count(c, ch.Message.Content.String())
			for _, tc := range ch.Message.ToolCalls {
				completion += t.count(c, tc.Function.Name) + t.count(c, tc.Function.Arguments)
			}
		}
	}
	return prompt, completion
}
