package route

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/foundryhq/foundry/provider"
)

// Policy is how one route's traffic is served. It is written as YAML or
// JSON (see ParsePolicy) and stored as JSON, one version per change.
//
// The answer comes from one arm, chosen by weight (a canary), consistently
// per user when Sticky is set. An arm with EscalateTo is a cascade: its
// answer is checked by Validate and replaced by EscalateTo's when a check
// fails. Fallback models are tried in order when the chosen model fails with
// a retryable error. Shadow targets get a copy of the request off the
// request path. Rollback watches the arms' live quality.
type Policy struct {
	Arms     []Arm     `json:"arms"`
	Fallback []string  `json:"fallback,omitempty"`
	Sticky   *Sticky   `json:"sticky,omitempty"`
	Shadow   *Shadow   `json:"shadow,omitempty"`
	Validate *Validate `json:"validate,omitempty"`
	Rollback *Rollback `json:"rollback,omitempty"`
}

// Arm is one way of answering: a model (any name the gateway resolves:
// "provider/model", an alias, a deployed adapter) with a weight.
type Arm struct {
	Name       string   `json:"name,omitempty"`   // label in records and stats; default Model
	Model      string   `json:"model"`            // the model called
	Weight     *float64 `json:"weight,omitempty"` // relative share; default 1
	EscalateTo string   `json:"escalate_to,omitempty"`
}

// Sticky keeps a user on one arm: Key is "user" (the request's user field)
// or "metadata.<key>" (a metadata value, from the body or X-Foundry-Metadata).
// Requests without the key are spread by weight at random.
type Sticky struct {
	Key string `json:"key"`
}

// Shadow mirrors requests to Targets after the primary answered. Sample is
// the fraction of requests mirrored (default 1).
type Shadow struct {
	Targets []string `json:"targets"`
	Sample  *float64 `json:"sample,omitempty"`
}

// Validate checks answers: the first choice's content must be valid
// against JSONSchema (as JSON), match Regex, and have a mean token log-prob
// of at least MinMeanLogprob. Cascade arms escalate on a failed check;
// every checked answer counts towards its arm's pass rate.
type Validate struct {
	JSONSchema     json.RawMessage `json:"json_schema,omitempty"`
	Regex          string          `json:"regex,omitempty"`
	MinMeanLogprob *float64        `json:"min_mean_logprob,omitempty"`
}

// Rollback restores the previous version of the policy when a watched arm's
// rolling quality falls below a bar with at least MinObservations in the
// window: mean feedback score (from the store), validator pass rate, or
// shadow-judge agreement. Zero bars are not checked.
type Rollback struct {
	Arms            []string `json:"arms,omitempty"` // watched arm (or shadow target) names; default: cascade arms, every arm but the first, the shadow targets
	Window          int      `json:"window,omitempty"`
	MinObservations int      `json:"min_observations,omitempty"`
	MinFeedback     *float64 `json:"min_feedback,omitempty"`
	MinPassRate     *float64 `json:"min_pass_rate,omitempty"`
	MinAgreement    *float64 `json:"min_agreement,omitempty"`
}

// Default rollback window and minimum observations.
const (
	DefaultWindow          = 100
	DefaultMinObservations = 20
)

// ParsePolicy reads a policy written as YAML or JSON. Unknown fields are
// errors (a misspelt key must not silently change nothing).
func ParsePolicy(b []byte) (*Policy, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("the policy is empty: give at least one arm, e.g. {\"arms\":[{\"model\":\"gpt-4o\"}]}")
	}
	js := b
	if !json.Valid(b) { // YAML, flow style ({arms: [...]}) included
		var err error
		if js, err = yaml.YAMLToJSON(b); err != nil {
			return nil, fmt.Errorf("the policy is neither JSON nor valid YAML: %w", err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	p := new(Policy)
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("read policy: %w (fields are arms, fallback, sticky, shadow, validate, rollback)", err)
	}
	return p, nil
}

// ParseCanary builds a canary's arms from "model=weight,model=weight"
// (e.g. "teacher=90,student=10").
func ParseCanary(s string) ([]Arm, error) {
	var arms []Arm
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		m, w, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("canary %q: %q is not model=weight (e.g. teacher=90,student=10)", s, part)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
		if err != nil {
			return nil, fmt.Errorf("canary %q: weight of %q: %w", s, m, err)
		}
		arms = append(arms, Arm{Model: strings.TrimSpace(m), Weight: &f})
	}
	if len(arms) == 0 {
		return nil, fmt.Errorf("canary %q names no arms (use model=weight,model=weight)", s)
	}
	return arms, nil
}

// Resolver reports whether the gateway can call a model name; its error
// says why not. RegistryResolver is the gateway's.
type Resolver func(ctx context.Context, model string) error

// RegistryResolver checks a model against the gateway's registry: the name
// must resolve to a provider and, when that provider lists its models, be
// one of them (a default provider takes any name, so resolving alone would
// accept a typo). A provider that cannot list its models is not held against
// the name.
func RegistryResolver(reg *provider.Registry) Resolver {
	return func(ctx context.Context, model string) error {
		t, err := reg.Resolve(model)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ms, err := t.Provider.Models(ctx)
		if err != nil || len(ms) == 0 {
			return nil
		}
		ids := make([]string, 0, len(ms))
		for _, m := range ms {
			if m.ID == t.Model {
				return nil
			}
			ids = append(ids, m.ID)
		}
		if len(ids) > 8 {
			ids = append(ids[:8], "...")
		}
		return fmt.Errorf("provider %s does not list %q (it lists %s); check the name, or deploy the model first", t.Provider.Name(), t.Model, strings.Join(ids, ", "))
	}
}

// compiled is a validated policy, ready to serve.
type compiled struct {
	Policy
	name    string
	version int
	since   time.Time // when this version was stored
	weights []float64 // per arm, normalised to sum 1
	schema  *jsonschema.Schema
	regex   *regexp.Regexp
	watched map[string]bool
}

// compile validates p for route name and prepares it. Every problem is
// reported at once, each naming the field and what to do.
func compile(ctx context.Context, name string, version int, p *Policy, resolve Resolver) (*compiled, error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	checkModel := func(field, model string) {
		switch {
		case model == "":
			bad("%s: the model is empty", field)
		case resolve != nil:
			if err := resolve(ctx, model); err != nil {
				bad("%s: unknown model %q: %v", field, model, err)
			}
		}
	}
	c := &compiled{Policy: *p, name: name, version: version, watched: map[string]bool{}}
	if len(p.Arms) == 0 {
		bad("arms: a policy needs at least one arm, e.g. arms: [{model: gpt-4o}]")
	}
	names := map[string]bool{}
	sum := 0.0
	c.Arms = make([]Arm, len(p.Arms))
	for i, a := range p.Arms {
		field := fmt.Sprintf("arms[%d]", i)
		if a.Name == "" {
			a.Name = a.Model
		}
		if names[a.Name] {
			bad("%s: arm name %q is used twice; give each arm its own name", field, a.Name)
		}
		names[a.Name] = true
		checkModel(field+".model", a.Model)
		w := 1.0
		if a.Weight != nil {
			w = *a.Weight
		}
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			bad("%s.weight: %v is not a non-negative number", field, w)
			w = 0
		}
		sum += w
		c.weights = append(c.weights, w)
		if a.EscalateTo != "" {
			checkModel(field+".escalate_to", a.EscalateTo)
			if p.Validate == nil {
				bad("%s.escalate_to: a cascade needs validate (json_schema, regex or min_mean_logprob) to decide when to escalate", field)
			}
		}
		c.Arms[i] = a
	}
	if len(p.Arms) > 0 && !(sum > 0) {
		bad("arms: the weights sum to %v; at least one arm needs a positive weight", sum)
	}
	for i := range c.weights {
		if sum > 0 {
			c.weights[i] /= sum
		}
	}
	for i, m := range p.Fallback {
		checkModel(fmt.Sprintf("fallback[%d]", i), m)
	}
	if s := p.Sticky; s != nil {
		if s.Key != "user" && (!strings.HasPrefix(s.Key, "metadata.") || len(s.Key) == len("metadata.")) {
			bad("sticky.key: %q must be \"user\" or \"metadata.<key>\"", s.Key)
		}
	}
	if s := p.Shadow; s != nil {
		if len(s.Targets) == 0 {
			bad("shadow.targets: name at least one model to mirror to")
		}
		for i, m := range s.Targets {
			checkModel(fmt.Sprintf("shadow.targets[%d]", i), m)
		}
		if s.Sample != nil && (*s.Sample < 0 || *s.Sample > 1 || math.IsNaN(*s.Sample)) {
			bad("shadow.sample: %v is not a fraction between 0 and 1", *s.Sample)
		}
	}
	if v := p.Validate; v != nil {
		if len(v.JSONSchema) == 0 && v.Regex == "" && v.MinMeanLogprob == nil {
			bad("validate: set json_schema, regex or min_mean_logprob")
		}
		if len(v.JSONSchema) > 0 {
			sch, err := compileSchema(v.JSONSchema)
			if err != nil {
				bad("validate.json_schema: invalid schema: %v", err)
			}
			c.schema = sch
		}
		if v.Regex != "" {
			re, err := regexp.Compile(v.Regex)
			if err != nil {
				bad("validate.regex: %v", err)
			}
			c.regex = re
		}
		if v.MinMeanLogprob != nil && (*v.MinMeanLogprob > 0 || math.IsNaN(*v.MinMeanLogprob)) {
			bad("validate.min_mean_logprob: %v must be a log-probability (<= 0, e.g. -0.5)", *v.MinMeanLogprob)
		}
	}
	if r := p.Rollback; r != nil {
		rb := *r
		if rb.Window == 0 {
			rb.Window = DefaultWindow
		}
		if rb.MinObservations == 0 {
			rb.MinObservations = DefaultMinObservations
		}
		if rb.Window < 0 || rb.MinObservations < 0 || rb.MinObservations > rb.Window {
			bad("rollback: window %d and min_observations %d must be positive with min_observations <= window", rb.Window, rb.MinObservations)
		}
		if rb.MinFeedback == nil && rb.MinPassRate == nil && rb.MinAgreement == nil {
			bad("rollback: set a bar: min_feedback, min_pass_rate or min_agreement")
		}
		for _, f := range []*float64{rb.MinPassRate, rb.MinAgreement} {
			if f != nil && (*f < 0 || *f > 1) {
				bad("rollback: min_pass_rate and min_agreement are fractions between 0 and 1, got %v", *f)
			}
		}
		if rb.MinPassRate != nil && p.Validate == nil {
			bad("rollback.min_pass_rate: needs validate to produce a pass rate")
		}
		if rb.MinAgreement != nil && p.Shadow == nil {
			bad("rollback.min_agreement: needs shadow targets to compare with")
		}
		shadows := map[string]bool{}
		if p.Shadow != nil {
			for _, t := range p.Shadow.Targets {
				shadows[t] = true
			}
		}
		for _, a := range rb.Arms {
			if !names[a] && !shadows[a] {
				bad("rollback.arms: %q is neither an arm nor a shadow target", a)
			}
			c.watched[a] = true
		}
		if len(rb.Arms) == 0 {
			for i, a := range c.Arms {
				if i > 0 || a.EscalateTo != "" {
					c.watched[a.Name] = true
				}
			}
			for t := range shadows {
				c.watched[t] = true
			}
		}
		c.Rollback = &rb
	}
	if len(errs) > 0 {
		return nil, &PolicyError{Route: name, Problems: errs}
	}
	return c, nil
}

// PolicyError is a policy refused by validation; the management API answers it with 400.
type PolicyError struct {
	Route    string
	Problems []string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("policy for route %q refused: %s", e.Route, strings.Join(e.Problems, "; "))
}

// compileSchema compiles a JSON Schema document.
func compileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy-schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("policy-schema.json")
}

// Shares returns each arm's share of traffic in percent, by arm name.
func (c *compiled) shares() map[string]float64 {
	out := make(map[string]float64, len(c.Arms))
	for i, a := range c.Arms {
		out[a.Name] = 100 * c.weights[i]
	}
	return out
}
