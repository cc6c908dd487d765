// Package tokenizertest makes small, valid Hugging Face tokenizer files for
// other packages' tests, so tests of the engine, training and serving can
// run tiny models without shipping real tokenizers.
package tokenizertest

import (
	"encoding/json"
	"fmt"
	"sort"
)

// ByteLevel returns a tokenizer.json document for a byte-level BPE without
// merges: ids 0–255 are the bytes (through GPT-2's byte-to-unicode map, as
// Llama 3 and Qwen use), and special maps further ids to special tokens
// (e.g. 256: "<|im_start|>").
func ByteLevel(special map[int]string) []byte {
	var printable []int // GPT-2's bytes_to_unicode
	for b := '!'; b <= '~'; b++ {
		printable = append(printable, int(b))
	}
	for b := 0xA1; b <= 0xAC; b++ {
		printable = append(printable, b)
	}
	for b := 0xAE; b <= 0xFF; b++ {
		printable = append(printable, b)
	}
	char := map[int]rune{}
	for _, b := range printable {
		char[b] = rune(b)
	}
	n := 0
	for b := range 256 {
		if _, ok := char[b]; !ok {
			char[b] = rune(256 + n)
			n++
		}
	}
	vocab := map[string]int{}
	for b := range 256 {
		vocab[string(char[b])] = b
	}
	ids := make([]int, 0, len(special))
	for id := range special {
		if id < 256 {
			panic(fmt.Sprintf("tokenizertest: special token id %d collides with the byte ids 0-255", id))
		}
		ids = append(ids, id)
	}
	sort.Ints(ids)
	added := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		added = append(added, map[string]any{"id": id, "content": special[id], "special": true})
	}
	b, err := json.Marshal(map[string]any{
		"version": "1.0", "added_tokens": added, "normalizer": nil, "post_processor": nil,
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"decoder":       map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}},
	})
	if err != nil {
		panic(err)
	}
	return b
}
