package quickstart

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// The bundled task: triage a customer-support ticket into a category,
// a priority and a sentiment, answered as one JSON object.
var (
	Categories = []string{"billing", "technical", "account", "shipping", "feature_request"}
	Priorities = []string{"low", "medium", "high"}
	Sentiments = []string{"negative", "neutral", "positive"}
)

// SystemPrompt is what the app sends with every ticket.
const SystemPrompt = `Triage this support ticket. Reply with JSON only: category, priority, sentiment.`

// Schema is the JSON Schema every answer must satisfy (curation's validator
// and the cascade's check).
const Schema = `{"type":"object","required":["category","priority","sentiment"],"additionalProperties":false,"properties":{` +
	`"category":{"enum":["billing","technical","account","shipping","feature_request"]},` +
	`"priority":{"enum":["low","medium","high"]},` +
	`"sentiment":{"enum":["negative","neutral","positive"]}}}`

// Labels are a ticket's ground truth.
type Labels struct {
	Category  string `json:"category"`
	Priority  string `json:"priority"`
	Sentiment string `json:"sentiment"`
}

// JSON is the canonical answer.
func (l Labels) JSON() string {
	b, _ := json.Marshal(l)
	return string(b)
}

// Ticket is one generated support ticket with its ground truth.
type Ticket struct {
	Text   string
	Labels Labels
	// Customer is the (fictional) user id the app sends as "user".
	Customer string
}

var products = []string{"Acme Cloud", "PixelPad", "Nimbus Drive", "QuickBooks Lite", "StreamBox", "FitTrack Band",
	"HomeHub", "Orbit VPN", "SnapPrint 300", "Lumen Desk Lamp", "CodeNest IDE", "MailDash"}

// Bodies per category: %s is the product. Each names the problem the way
// customers do; the category follows from it.
var bodies = map[string][]string{
	"billing": {
		"I was charged twice for my %s subscription this month.",
		"My invoice for %s shows the wrong amount.",
		"I cancelled %s but you still took a payment.",
		"Can I get a refund for the %s annual plan?",
		"The %s price went up without any notice on my card.",
		"Why is there a %s charge on my statement I don't recognise?",
		"Please update the billing address on my %s invoices.",
	},
	"technical": {
		"%s crashes every time I open it.",
		"The %s app keeps showing error 502 when syncing.",
		"%s stopped connecting to wifi after the last update.",
		"Since the update %s is extremely slow and freezes.",
		"I can't export files from %s, the button does nothing.",
		"%s drains the battery in two hours now.",
		"The %s integration returns a timeout on every request.",
	},
	"account": {
		"I can't log in to my %s account, the password reset email never arrives.",
		"Please delete my %s account and all my data.",
		"How do I change the email address on my %s account?",
		"My %s account was locked after too many attempts.",
		"I want to add a second user to our %s account.",
		"Two-factor codes for %s are not accepted when I sign in.",
		"Someone else may have accessed my %s account.",
	},
	"shipping": {
		"My %s order hasn't arrived and it's been two weeks.",
		"The tracking number for my %s order doesn't work.",
		"The %s box arrived damaged.",
		"I received the wrong item instead of my %s.",
		"Can you ship the %s to a different address?",
		"My %s package says delivered but I never got it.",
	},
	"feature_request": {
		"It would be great if %s had a dark mode.",
		"Could you add CSV export to %s?",
		"Please let %s sync with Google Calendar.",
		"I'd love keyboard shortcuts in %s.",
		"Any plans to support multiple languages in %s?",
		"Please add an offline mode to %s.",
	},
}

var urgency = map[string][]string{
	"high":   {"This is urgent, our whole team is blocked.", "Please fix this ASAP.", "I need this resolved today.", "This is costing us money every hour."},
	"medium": {"Could you look into it this week?", "Please get back to me when you can.", "I'd appreciate a reply soon.", ""},
	"low":    {"No rush at all.", "Whenever you have a moment.", "Just letting you know.", "Not urgent."},
}

var tone = map[string][]string{
	"negative": {"I'm really frustrated.", "This is unacceptable.", "Very disappointed with the service.", "Honestly I'm about to switch to a competitor."},
	"neutral":  {"", "Thanks.", "Regards.", "Details are below."},
	"positive": {"Love the product otherwise!", "Thanks so much, you guys are great.", "Keep up the good work!", "Really happy with it so far."},
}

var greetings = []string{"", "Hi,", "Hello team,", "Hey there,", "Good morning,", "Hi support,"}

var names = []string{"Ana", "Ben", "Chloe", "Dev", "Elif", "Farah", "Gus", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Marco", "Nia", "Omar", "Priya"}

// Which priorities and sentiments fit a category (feature requests are never
// urgent; a double charge is rarely cheerful), with weights.
var priorityWeights = map[string][3]float64{ // low, medium, high
	"billing": {1, 3, 3}, "technical": {1, 2, 4}, "account": {1, 3, 3}, "shipping": {1, 3, 2}, "feature_request": {5, 2, 0},
}
var sentimentWeights = map[string][3]float64{ // negative, neutral, positive
	"billing": {4, 3, 1}, "technical": {4, 3, 1}, "account": {3, 4, 1}, "shipping": {4, 3, 1}, "feature_request": {0, 3, 4},
}

func pickWeighted(r *rand.Rand, labels []string, w [3]float64) string {
	t := r.Float64() * (w[0] + w[1] + w[2])
	for i, x := range w {
		if t < x {
			return labels[i]
		}
		t -= x
	}
	return labels[len(labels)-1]
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// Generator makes realistic tickets deterministically from a seed:
// category templates × products × urgency and tone phrasings, greetings,
// sign-offs, and now and then an email address or phone number (for the
// scrubber) or a ticket sent twice (for dedupe).
type Generator struct {
	r    *rand.Rand
	n    int
	prev []Ticket
}

// NewGenerator returns a generator for seed.
func NewGenerator(seed uint64) *Generator {
	return &Generator{r: rand.New(rand.NewPCG(seed, 0x71c4e75))}
}

// Next returns the next ticket. About one in twelve repeats an earlier
// ticket word for word, as customers who send the same message twice do.
func (g *Generator) Next() Ticket {
	g.n++
	if len(g.prev) > 10 && g.r.IntN(12) == 0 {
		return g.prev[g.r.IntN(len(g.prev))]
	}
	t := g.fresh()
	g.prev = append(g.prev, t)
	return t
}

func (g *Generator) fresh() Ticket {
	r := g.r
	cat := pick(r, Categories)
	l := Labels{Category: cat, Priority: pickWeighted(r, Priorities, priorityWeights[cat]), Sentiment: pickWeighted(r, Sentiments, sentimentWeights[cat])}
	var parts []string
	if gr := pick(r, greetings); gr != "" {
		parts = append(parts, gr)
	}
	parts = append(parts, fmt.Sprintf(pick(r, bodies[cat]), pick(r, products)))
	ph := []string{pick(r, urgency[l.Priority]), pick(r, tone[l.Sentiment])}
	if r.IntN(2) == 0 {
		ph[0], ph[1] = ph[1], ph[0]
	}
	for _, p := range ph {
		if p != "" {
			parts = append(parts, p)
		}
	}
	name := pick(r, names)
	switch r.IntN(10) {
	case 0:
		parts = append(parts, fmt.Sprintf("You can reach me at %s.%d@example.com.", strings.ToLower(name), 10+r.IntN(90)))
	case 1:
		parts = append(parts, fmt.Sprintf("Call me on +1 415 555 %04d.", r.IntN(10000)))
	case 2, 3:
		parts = append(parts, fmt.Sprintf("Order #%d.", 100000+r.IntN(900000)))
	}
	if r.IntN(5) == 0 {
		parts = append(parts, "- "+name)
	}
	return Ticket{Text: strings.Join(parts, " "), Labels: l, Customer: fmt.Sprintf("cust-%03d", r.IntN(120))}
}

// Corpus returns n fresh tickets' text: the unlabelled text a student is
// pretrained on (drawn from another seed than the traffic).
func Corpus(seed uint64, n int) []string {
	g := NewGenerator(seed)
	out := make([]string, n)
	for i := range out {
		out[i] = g.fresh().Text
	}
	return out
}

// ParseLabels reads an answer as Labels: the JSON object, after an optional
// Markdown fence. ok is false for anything else.
func ParseLabels(answer string) (Labels, bool) {
	s := strings.TrimSpace(answer)
	s = strings.TrimPrefix(s, "```json")
	s = strings.TrimPrefix(s, "```")
	s = strings.TrimSuffix(s, "```")
	var l Labels
	dec := json.NewDecoder(strings.NewReader(strings.TrimSpace(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil || dec.More() {
		return Labels{}, false
	}
	return l, true
}
