package route

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// Middleware serves calls whose model is a route by its live policy; other
// calls pass through untouched.
func (r *Router) Middleware(next provider.Invoker) provider.Invoker {
	return &invoker{r: r, next: next}
}

type invoker struct {
	r    *Router
	next provider.Invoker
}

// pick chooses the call's arm: by weighted rendezvous hashing of the sticky
// key (a user stays on one arm, and when weights change only the users the
// change must move do move), else at random by weight.
func (cp *compiled) pick(c *provider.Call) int {
	key := ""
	if s := cp.Sticky; s != nil {
		if s.Key == "user" {
			key = c.User
		} else {
			key = c.Metadata[s.Key[len("metadata."):]]
		}
	}
	if key == "" {
		x := rand.Float64()
		for i, w := range cp.weights {
			if x < w {
				return i
			}
			x -= w
		}
		for i := len(cp.weights) - 1; i >= 0; i-- { // rounding: the last arm with weight
			if cp.weights[i] > 0 {
				return i
			}
		}
		return 0
	}
	best, bestScore := 0, math.Inf(-1)
	for i, a := range cp.Arms {
		w := cp.weights[i]
		if w <= 0 {
			continue
		}
		u := unitHash(key, a.Name)
		score := w / -math.Log(u) // weighted rendezvous: P(arm i wins) = w_i / sum(w)
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// unitHash maps (key, arm) to a uniform number in (0, 1).
func unitHash(key, arm string) float64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(arm))
	x := h.Sum64()
	// splitmix64 finaliser: FNV's low bits are not uniform enough on their own.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return (float64(x>>11) + 0.5) / (1 << 53)
}

// chain calls fn with c.Route set to model, then to each fallback in turn
// while the failure is retryable (the gateway has already retried each).
func (r *Router) chain(ctx context.Context, c *provider.Call, cp *compiled, model string, fn func() error) error {
	models := []string{model}
	for _, m := range cp.Fallback {
		if !slices.Contains(models, m) {
			models = append(models, m)
		}
	}
	var err error
	for i, m := range models {
		c.Route = m
		if err = fn(); err == nil || ctx.Err() != nil || !retryable(err) {
			return err
		}
		if i+1 < len(models) {
			r.log.Debug("route: falling back", "route", cp.name, "from", m, "to", models[i+1], "err", err)
		}
	}
	return err
}

// retryable: an upstream failure another model may not have, or a model the
// gateway cannot resolve (a fallback can still answer).
func retryable(err error) bool {
	var ue *provider.UpstreamError
	if errors.As(err, &ue) {
		return ue.Retryable()
	}
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == "model_not_found"
}

func (v *invoker) Chat(ctx context.Context, c *provider.Call) (*api.ChatResponse, error) {
	st := v.r.lookup(c.Route)
	if st == nil {
		return v.next.Chat(ctx, c)
	}
	cp := st.c
	arm := cp.Arms[cp.pick(c)]
	label(c, cp, arm.Name)
	st.arm(arm.Name, arm.Model).requests.Add(1)
	var resp *api.ChatResponse
	var err error
	if arm.EscalateTo != "" {
		resp, _, err = v.r.cascade(ctx, c, st, arm, v.next, false)
	} else {
		err = v.r.chain(ctx, c, cp, arm.Model, func() (err error) { resp, err = v.next.Chat(ctx, c); return })
		if err == nil && cp.Validate != nil && (cp.schema != nil || cp.regex != nil) {
			st.observePass(arm.Name, arm.Model, cp.check(resp, false) == "") // no logprobs were asked for
		}
	}
	c.Route = cp.name
	if err != nil {
		st.arm(arm.Name, arm.Model).errors.Add(1)
		return nil, err
	}
	v.r.mirror(c, st, v.next, resp)
	return resp, nil
}

func (v *invoker) ChatStream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	st := v.r.lookup(c.Route)
	if st == nil {
		return v.next.ChatStream(ctx, c)
	}
	cp := st.c
	arm := cp.Arms[cp.pick(c)]
	label(c, cp, arm.Name)
	st.arm(arm.Name, arm.Model).requests.Add(1)
	var out provider.Stream
	var err error
	if arm.EscalateTo != "" {
		_, out, err = v.r.cascade(ctx, c, st, arm, v.next, true)
	} else {
		err = v.r.chain(ctx, c, cp, arm.Model, func() (err error) { out, err = v.next.ChatStream(ctx, c); return })
	}
	c.Route = cp.name
	if err != nil {
		st.arm(arm.Name, arm.Model).errors.Add(1)
		return nil, err
	}
	v.r.mirror(c, st, v.next, nil)
	return out, nil
}

func (v *invoker) Embeddings(ctx context.Context, c *provider.Call) (*api.EmbeddingResponse, error) {
	st := v.r.lookup(c.Route)
	if st == nil {
		return v.next.Embeddings(ctx, c)
	}
	cp := st.c
	arm := cp.Arms[cp.pick(c)]
	label(c, cp, arm.Name)
	st.arm(arm.Name, arm.Model).requests.Add(1)
	var resp *api.EmbeddingResponse
	err := v.r.chain(ctx, c, cp, arm.Model, func() (err error) { resp, err = v.next.Embeddings(ctx, c); return })
	c.Route = cp.name
	if err != nil {
		st.arm(arm.Name, arm.Model).errors.Add(1)
	}
	return resp, err
}

// child starts a call derived from c (a shadow or a cascade candidate): its
// own id, linked to c by ParentID, with c's identity and labels.
func child(c *provider.Call, req *api.ChatRequest) *provider.Call {
	body, _ := json.Marshal(req)
	return &provider.Call{ID: newID(), ParentID: c.ID, Start: time.Now(), Endpoint: c.Endpoint,
		Project: c.Project, KeyID: c.KeyID, User: c.User, Tags: slices.Clone(c.Tags), Metadata: maps.Clone(c.Metadata),
		Chat: req, RawBody: body}
}

// finishChild fills in how a derived call went, for its record.
func finishChild(c *provider.Call, route string, resp *api.ChatResponse, err error) {
	c.Route = route
	c.Latency = time.Since(c.Start)
	c.TTFT = c.Latency
	c.ChatResponse = resp
	c.Err = err
	c.Status = http.StatusOK
	if err != nil {
		c.Status = api.StatusOf(err)
	}
}

// cascade asks the arm's candidate model first (non-streaming, with
// logprobs when a log-prob bar is set), checks its answer, and escalates to
// arm.EscalateTo when a check fails or the candidate errs. The candidate's
// escalated call is recorded as its own record (tag cascade:escalated,
// ParentID = the client's request); c ends up as the winning call. For a
// streaming client the candidate's answer is buffered and replayed as a
// stream when it wins; an escalation streams from the teacher directly.
func (r *Router) cascade(ctx context.Context, c *provider.Call, st *state, arm Arm, next provider.Invoker, stream bool) (*api.ChatResponse, provider.Stream, error) {
	cp := st.c
	req := *c.Chat
	req.Stream, req.StreamOptions = false, nil
	clientLogprobs := c.Chat.Logprobs != nil && *c.Chat.Logprobs
	if cp.Validate.MinMeanLogprob != nil && !clientLogprobs {
		t := true
		req.Logprobs = &t
	}
	cc := child(c, &req)
	var resp *api.ChatResponse
	err := r.chain(ctx, cc, cp, arm.Model, func() (err error) { resp, err = next.Chat(ctx, cc); return })
	reason := ""
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		reason = "candidate failed: " + api.AsError(err).Message
	} else {
		reason = cp.check(resp, true)
		st.observePass(arm.Name, arm.Model, reason == "")
	}
	if reason == "" {
		c.Provider, c.Model, c.Attempts = cc.Provider, cc.Model, c.Attempts+cc.Attempts
		c.Metadata["route.escalated"] = "false"
		if !clientLogprobs {
			for i := range resp.Choices {
				resp.Choices[i].Logprobs = nil
			}
		}
		if stream {
			return nil, replay(resp), nil
		}
		return resp, nil, nil
	}
	finishChild(cc, cp.name, resp, err)
	cc.Tags = append(cc.Tags, "cascade:escalated")
	cc.Metadata["route.escalated"] = "true"
	cc.Metadata["route.escalation_reason"] = reason
	if r.opts.Recorder != nil {
		r.opts.Recorder.PostCall(context.WithoutCancel(ctx), cc)
	}
	st.arm(arm.Name, arm.Model).escalations.Add(1)
	r.log.Debug("route: escalating", "route", cp.name, "arm", arm.Name, "to", arm.EscalateTo, "reason", reason, "id", c.ID)
	c.Metadata["route.escalated"] = "true"
	c.Metadata["route.escalation_reason"] = reason
	c.Metadata["route.escalated_from"] = cc.ID
	if stream {
		var out provider.Stream
		err := r.chain(ctx, c, cp, arm.EscalateTo, func() (err error) { out, err = next.ChatStream(ctx, c); return })
		return nil, out, err
	}
	err = r.chain(ctx, c, cp, arm.EscalateTo, func() (err error) { resp, err = next.Chat(ctx, c); return })
	return resp, nil, err
}

// replay streams a complete response as OpenAI's chunks: per choice its
// content (and tool calls) in one delta, then its finish reason, then usage.
func replay(resp *api.ChatResponse) provider.Stream {
	var chunks []*api.ChatChunk
	mk := func(choices []api.ChunkChoice) *api.ChatChunk {
		return &api.ChatChunk{ID: resp.ID, Object: "chat.completion.chunk", Created: resp.Created, Model: resp.Model,
			SystemFingerprint: resp.SystemFingerprint, Choices: choices}
	}
	for _, ch := range resp.Choices {
		d := api.Delta{Role: "assistant", Refusal: ch.Message.Refusal}
		if s := ch.Message.Content.String(); s != "" || len(ch.Message.ToolCalls) == 0 {
			d.Content = &s
		}
		for i, tc := range ch.Message.ToolCalls {
			d.ToolCalls = append(d.ToolCalls, api.ToolCallDelta{Index: i, ID: tc.ID, Type: tc.Type,
				Function: api.FunctionCallDelta{Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
		}
		chunks = append(chunks, mk([]api.ChunkChoice{{Index: ch.Index, Delta: d, Logprobs: ch.Logprobs}}))
		fr := ch.FinishReason
		chunks = append(chunks, mk([]api.ChunkChoice{{Index: ch.Index, FinishReason: &fr}}))
	}
	if resp.Usage != nil {
		u := mk([]api.ChunkChoice{})
		u.Usage = resp.Usage
		chunks = append(chunks, u)
	}
	return &sliceStream{chunks: chunks}
}

type sliceStream struct {
	chunks []*api.ChatChunk
	i      int
}

func (s *sliceStream) Next() (*api.ChatChunk, error) {
	if s.i >= len(s.chunks) {
		return nil, io.EOF
	}
	s.i++
	return s.chunks[s.i-1], nil
}

func (s *sliceStream) Close() error { return nil }

// check runs the policy's validators on an answer's first choice (the
// log-prob bar only with logprob); it returns why the answer fails, or ""
// when it passes.
func (cp *compiled) check(resp *api.ChatResponse, logprob bool) string {
	v := cp.Validate
	if v == nil {
		return ""
	}
	if resp == nil || len(resp.Choices) == 0 {
		return "the answer has no choices"
	}
	ch := resp.Choices[0]
	content := ch.Message.Content.String()
	if cp.schema != nil {
		inst, err := jsonUnmarshal(content)
		if err != nil {
			return "json_schema: the answer is not JSON: " + clip(err.Error())
		}
		if err := cp.schema.Validate(inst); err != nil {
			return "json_schema: " + clip(err.Error())
		}
	}
	if cp.regex != nil && !cp.regex.MatchString(content) {
		return "regex: the answer does not match " + clip(cp.Validate.Regex)
	}
	if v.MinMeanLogprob != nil && logprob {
		if ch.Logprobs == nil || len(ch.Logprobs.Content) == 0 {
			return "min_mean_logprob: the answer has no logprobs (does the candidate's server support logprobs?)"
		}
		sum := 0.0
		for _, t := range ch.Logprobs.Content {
			sum += t.Logprob
		}
		if mean := sum / float64(len(ch.Logprobs.Content)); mean < *v.MinMeanLogprob {
			return "min_mean_logprob: mean token log-prob " + strconv.FormatFloat(mean, 'f', 3, 64) + " < " + strconv.FormatFloat(*v.MinMeanLogprob, 'f', 3, 64)
		}
	}
	return ""
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func jsonUnmarshal(s string) (any, error) { return jsonschema.UnmarshalJSON(strings.NewReader(s)) }
