package web

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/store"
)

// detailView is a captured call's page: the conversation as chat bubbles,
// the reply, the raw bodies and the metadata.
type detailView struct {
	gateway.RecordJSON
	Conversation []bubble // the request's messages; nil when the body is not a chat request
	Reply        []bubble // the response's choices
	Tools        []toolDef
	Params       []keyValue // sampling and other request parameters
	Metadata     []keyValue
	RequestJSON  string // pretty-printed, possibly truncated
	ResponseJSON string
	Feedback     feedbackView
}

type bubble struct {
	Role       string
	Name       string
	Text       string
	Images     []string // image URLs (data: URLs shortened)
	ToolCalls  []toolCallView
	ToolCallID string
	Refusal    string
	Finish     string // finish_reason, for replies
}

type toolCallView struct{ ID, Name, Args string }

type toolDef struct{ Name, Description, Parameters string }

type keyValue struct{ Key, Value string }

// maxRawJSON bounds the raw bodies shown on the page; the API has the rest.
const maxRawJSON = 512 << 10

func viewDetail(rec store.RecordWithFeedback) detailView {
	v := detailView{RecordJSON: gateway.ViewRecord(rec, false)}
	v.Feedback = feedbackView{ID: rec.ID, Feedback: v.RecordJSON.Feedback}
	for k, val := range rec.Metadata {
		v.Metadata = append(v.Metadata, keyValue{k, val})
	}
	slices.SortFunc(v.Metadata, func(a, b keyValue) int { return strings.Compare(a.Key, b.Key) })
	v.RequestJSON, v.ResponseJSON = pretty(rec.Request), pretty(rec.Response)

	var req api.ChatRequest
	if len(rec.Request) > 0 && json.Unmarshal(rec.Request, &req) == nil && len(req.Messages) > 0 {
		for _, m := range req.Messages {
			v.Conversation = append(v.Conversation, messageBubble(m))
		}
		for _, t := range req.Tools {
			v.Tools = append(v.Tools, toolDef{Name: t.Function.Name, Description: t.Function.Description, Parameters: pretty(t.Function.Parameters)})
		}
		v.Params = requestParams(rec.Request)
	}
	var resp api.ChatResponse
	if len(rec.Response) > 0 && json.Unmarshal(rec.Response, &resp) == nil {
		for _, c := range resp.Choices {
			b := messageBubble(c.Message)
			if b.Role == "" {
				b.Role = "assistant"
			}
			b.Finish = c.FinishReason
			v.Reply = append(v.Reply, b)
		}
	}
	return v
}

func messageBubble(m api.Message) bubble {
	b := bubble{Role: m.Role, Name: m.Name, ToolCallID: m.ToolCallID}
	if m.Refusal != nil {
		b.Refusal = *m.Refusal
	}
	var text []string
	if m.Content.Parts == nil {
		text = append(text, m.Content.Text)
	}
	for _, p := range m.Content.Parts {
		switch {
		case p.Type == "text":
			text = append(text, p.Text)
		case p.ImageURL != nil:
			u := p.ImageURL.URL
			if strings.HasPrefix(u, "data:") && len(u) > 64 {
				u = u[:48] + "… (" + fmtInt(int64(len(u))) + " bytes)"
			}
			b.Images = append(b.Images, u)
		default:
			text = append(text, "["+p.Type+" part]")
		}
	}
	b.Text = strings.Join(text, "\n")
	for _, tc := range m.ToolCalls {
		b.ToolCalls = append(b.ToolCalls, toolCallView{ID: tc.ID, Name: tc.Function.Name, Args: pretty(json.RawMessage(tc.Function.Arguments))})
	}
	return b
}

// requestParams lists the request's fields other than the conversation
// itself (temperature, max_tokens, response_format, ...).
func requestParams(raw json.RawMessage) []keyValue {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []keyValue
	for k, val := range m {
		switch k {
		case "messages", "tools", "model", "metadata", "user":
			continue
		}
		var b bytes.Buffer
		if json.Compact(&b, val) != nil {
			continue
		}
		s := b.String()
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		out = append(out, keyValue{k, s})
	}
	slices.SortFunc(out, func(a, b keyValue) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// pretty indents JSON; anything else (tool arguments a model got wrong
// included) is shown as it is.
func pretty(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		b.Reset()
		b.Write(raw)
	}
	if b.Len() > maxRawJSON {
		return b.String()[:maxRawJSON] + "\n… (truncated: " + fmtInt(int64(b.Len())) + " bytes; GET /api/v1/requests/{id} has all of it)"
	}
	return b.String()
}
