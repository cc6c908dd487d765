package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/foundryhq/foundry/tokenizer"
)

func Example() {
	tok, err := tokenizer.Load("/path/to/Qwen3-0.6B")
	if err != nil {
		log.Fatal(err)
	}
	text, err := tok.ApplyChatTemplate(tokenizer.ChatRequest{
		Messages:            []tokenizer.Message{{Role: "user", Content: "Hello!"}},
		AddGenerationPrompt: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	// The template already wrote any BOS; don't add it twice.
	prompt := tok.Encode(text, tokenizer.EncodeOptions{})

	sd := tokenizer.NewStreamDecoder(tok, true)
	for _, id := range prompt { // stand-in for generated ids
		if tok.IsStop(id) {
			break
		}
		fmt.Print(sd.Add(id))
	}
	fmt.Print(sd.Flush())
}
