package quickstart

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/upstreamtest"
)

// TeacherModel is the simulated teacher's model name. It stands in for a
// hosted model (priced like gpt-4o-mini) so the quick start runs offline.
const TeacherModel = "sim-teacher"

// Teacher is the simulated teacher: an in-process OpenAI-compatible server
// (upstreamtest's fake, which speaks the exact wire format) that answers the
// bundled triage task the way a hosted model does — mostly right, with
// realistic mistakes, deterministically for a seed and a ticket:
//
//   - about 12% wrong labels, systematic as real models' are (a login problem
//     called technical, a lost-package refund called billing, the priority off
//     by one, frustration read as neutral);
//   - about 4% broken JSON (cut off, single quotes, a trailing comma);
//   - chatty preambles before the JSON: rarely, except that a ticket signed
//     with the customer's name usually gets "Thanks, Ana! Here's the
//     triage: ..." (about 14% of all answers).
//
// It is not a language model: it reads the labels off the ticket's phrasing
// (the generator's phrase tables) and then makes its mistakes.
type Teacher struct {
	URL string // base URL for clients, ending in /v1
	// Latency is the simulated time to answer (a hosted model's network and
	// queueing time), plus PerToken for each output token.
	Latency, PerToken time.Duration

	seed uint64
	fake *upstreamtest.OpenAI
	srv  *http.Server
	ln   net.Listener
}

// StartTeacher starts the simulated teacher on 127.0.0.1.
func StartTeacher(seed uint64) (*Teacher, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("simulated teacher: listen: %w", err)
	}
	t := &Teacher{URL: "http://" + ln.Addr().String() + "/v1", seed: seed, ln: ln,
		Latency: 120 * time.Millisecond, PerToken: 4 * time.Millisecond}
	t.fake = upstreamtest.NewOpenAIHandler() // served below, behind the simulated latency
	t.fake.Record(false)
	t.fake.SetModels(TeacherModel)
	t.fake.OnChat(t.reply)
	t.srv = &http.Server{Handler: http.HandlerFunc(t.serve), ReadHeaderTimeout: 10 * time.Second}
	go t.srv.Serve(ln)
	return t, nil
}

// Close stops the server.
func (t *Teacher) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return t.srv.Shutdown(ctx)
}

func (t *Teacher) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/chat/completions") {
		// Simulated hosted-model latency, proportional to a typical answer.
		d := t.Latency + 15*t.PerToken
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	t.fake.ServeHTTP(w, r)
}

func (t *Teacher) reply(req *api.ChatRequest) upstreamtest.Reply {
	var ticket string
	prompt := 0
	for _, m := range req.Messages {
		s := m.Content.String()
		prompt += approxTokens(s) + 4
		if m.Role == "user" {
			ticket = s
		}
	}
	answer := t.Answer(ticket)
	out := approxTokens(answer)
	return upstreamtest.Reply{Content: answer, Usage: &api.Usage{PromptTokens: prompt, CompletionTokens: out, TotalTokens: prompt + out}}
}

// approxTokens counts tokens the way OpenAI's tokenizers roughly do on
// English: a token per four characters.
func approxTokens(s string) int { return (len(s) + 3) / 4 }

// Answer is the teacher's answer to a ticket: deterministic for the
// teacher's seed and the ticket's text.
func (t *Teacher) Answer(ticket string) string {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], t.seed)
	h.Write(b[:])
	h.Write([]byte(ticket))
	x := h.Sum64()
	roll := func(salt uint64) float64 { // a uniform number in [0,1) per (ticket, salt)
		v := (x ^ (salt * 0x9e3779b97f4a7c15)) * 0xbf58476d1ce4e5b9
		v ^= v >> 31
		return float64(v>>11) / (1 << 53)
	}
	l := Classify(ticket)
	// Wrong labels: systematic confusions.
	if roll(1) < 0.08 {
		l.Category = map[string]string{"account": "technical", "technical": "account", "shipping": "billing",
			"billing": "account", "feature_request": "technical"}[l.Category]
	}
	if roll(2) < 0.04 {
		l.Priority = map[string]string{"low": "medium", "medium": "high", "high": "medium"}[l.Priority]
	}
	if roll(3) < 0.03 && l.Sentiment == "negative" {
		l.Sentiment = "neutral"
	}
	ans := l.JSON()
	switch r := roll(4); {
	case r < 0.015:
		ans = strings.TrimSuffix(ans, "}") // cut off
	case r < 0.03:
		ans = strings.ReplaceAll(ans, `"`, `'`)
	case r < 0.04:
		ans = strings.TrimSuffix(ans, "}") + ",}"
	}
	// Chatty preambles: rare, except that a ticket signed with the customer's
	// name usually gets a personal one, as chat models mirror their users.
	chatty, name := 0.02, ""
	if i := strings.LastIndex(ticket, " - "); i >= 0 {
		chatty, name = 0.6, ticket[i+3:]
	}
	if r := roll(5); r < chatty {
		if name != "" {
			ans = "Thanks, " + name + "! Here's the triage:\n" + ans
		} else {
			pre := []string{"Sure! Here's the triage for this ticket:\n\n", "Here is the JSON you asked for:\n", "Happy to help! "}
			ans = pre[int(roll(6)*float64(len(pre)))] + ans
		}
		if roll(7) < 0.3 {
			ans += "\n\nLet me know if you need anything else!"
		}
	} else if r < chatty+0.03 {
		ans = "```json\n" + ans + "\n```" // fenced: still valid JSON to most parsers
	}
	return ans
}

// Classify reads a ticket's labels off its phrasing: the generator's own
// tables, so it is right on generated tickets (and guesses on others).
func Classify(ticket string) Labels {
	l := Labels{Category: "technical", Priority: "medium", Sentiment: "neutral"}
	found := false
	for _, c := range Categories {
		for _, b := range bodies[c] {
			pre, post, _ := strings.Cut(b, "%s")
			if strings.Contains(ticket, pre) && strings.Contains(ticket, post) {
				l.Category, found = c, true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		lower := strings.ToLower(ticket)
		for _, kw := range []struct{ word, cat string }{{"refund", "billing"}, {"charge", "billing"}, {"invoice", "billing"},
			{"password", "account"}, {"log in", "account"}, {"login", "account"}, {"order", "shipping"}, {"deliver", "shipping"},
			{"please add", "feature_request"}, {"would be great", "feature_request"}} {
			if strings.Contains(lower, kw.word) {
				l.Category = kw.cat
				break
			}
		}
	}
	for _, p := range []string{"high", "low", "medium"} {
		for _, s := range urgency[p] {
			if s != "" && strings.Contains(ticket, s) {
				l.Priority = p
			}
		}
	}
	for _, p := range []string{"negative", "positive"} {
		for _, s := range tone[p] {
			if s != "" && strings.Contains(ticket, s) {
				l.Sentiment = p
			}
		}
	}
	return l
}
