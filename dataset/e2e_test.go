package dataset_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/gateway/gatewaytest"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/upstreamtest"
)

// TestBuildFromGatewayTraffic fills a real SQLite store through the real
// gateway (openai-go client → gateway → capture → sqlite, with a fake OpenAI
// upstream), builds a dataset with one call and checks the exported OpenAI
// JSONL parses as fine-tuning examples.
func TestBuildFromGatewayTraffic(t *testing.T) {
	ctx := context.Background()
	up := upstreamtest.NewOpenAI(t)
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		q := req.Messages[len(req.Messages)-1].Content.String()
		switch {
		case strings.Contains(q, "forbidden"):
			return upstreamtest.Reply{Content: "I'm sorry, but I can't help with that."}
		case strings.Contains(q, "email"):
			return upstreamtest.Reply{Content: "Sure, I will write to ops@example.com about: " + q}
		}
		return upstreamtest.Reply{Content: "Here is a careful answer about " + q}
	})
	g := gatewaytest.Start(t, gatewaytest.Options{Upstream: up.URL, Capture: true})
	st, capt := g.Store, g.Capture
	client := openai.NewClient(option.WithBaseURL(g.URL), option.WithAPIKey("unused"), option.WithMaxRetries(0))

	topics := []string{"invoices", "refunds", "passwords", "shipping", "returns", "warranty", "upgrades", "discounts",
		"exports", "backups", "printers", "routers", "calendars", "budgets", "travel", "insurance", "recipes", "gardens",
		"bicycles", "batteries", "firmware", "scanners", "monitors", "keyboards", "coupons", "receipts", "transfers", "statements"}
	var ids []string
	call := func(q string, tags string) string {
		var resp *http.Response
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You are the support bot."), openai.UserMessage(q)},
		}, option.WithHeader("X-Foundry-Tags", tags), option.WithHeader("X-Foundry-Metadata", "team=support"), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("X-Request-Id")
	}
	for i, topic := range topics {
		ids = append(ids, call(fmt.Sprintf("How do I manage my %s when the account is on the team plan number %d?", topic, i), "prod,support"))
	}
	call("How do I manage my invoices when the account is on the team plan number 0?", "prod,support") // exact duplicate
	call("Tell me the forbidden recipe", "prod,support")                                               // refusal
	call("Please email the team about the outage", "prod,support")                                     // PII in the answer
	call("A staging call about printers", "staging")                                                   // not selected (tag)
	if err := capt.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Feedback through the management API, as an app would send it.
	for i, id := range ids[:10] {
		body := fmt.Sprintf(`{"request_id":%q,"score":%d}`, id, 5+i%5)
		resp, err := http.Post(g.Root+"/api/v1/feedback", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("feedback: %v %v", resp.Status, err)
		}
		resp.Body.Close()
	}

	spec, err := dataset.ParseSpec("e2e.yaml", []byte(`name: support
sources:
  - store: {routes: [gpt-4o-mini], tags: [prod]}
split: {train: 0.8, val: 0.1, test: 0.1}
`))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	built, err := dataset.Build(ctx, spec, dataset.BuildOptions{Store: st, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	f := built.Manifest.Funnel
	if f.Stage("select").In != int64(len(topics)+3) || f.Stage("validate").DroppedFor(dataset.ReasonRefusal) != 1 ||
		f.Stage("dedupe").DroppedFor(dataset.ReasonExactDuplicate) != 1 || f.Stage("scrub").Counters["EMAIL"] != 1 {
		for _, r := range f {
			t.Logf("%s in %d out %d %+v %v", r.Stage, r.In, r.Out, r.Dropped, r.Counters)
		}
		t.Fatal("unexpected funnel")
	}
	// The feedback reached the rows: the sample of a scored row carries its score.
	scored := 0
	for _, s := range built.Manifest.Sample {
		if s.Score != nil {
			scored++
		}
	}
	t.Logf("built %s: %v rows, %d sampled rows with feedback", built.Manifest.Ref(), built.Manifest.Rows, scored)

	v, err := dataset.Open(dataDir, "support")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, skipped, err := v.Export(ctx, "", dataset.FormatOpenAI, &buf)
	if err != nil || skipped != 0 {
		t.Fatalf("export: %v (%d skipped)", err, skipped)
	}
	want := int64(len(topics)) + 1 // every topic once, plus the email call; the duplicate and the refusal are gone
	if n != want {
		t.Errorf("exported %d rows, want %d", n, want)
	}
	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		lines++
		var ex api.FineTuneExample
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		if err := dec.Decode(&ex); err != nil {
			t.Fatalf("line %d is not a fine-tuning example: %v", lines, err)
		}
		if len(ex.Messages) != 3 || ex.Messages[0].Role != "system" || ex.Messages[2].Role != "assistant" || ex.Messages[2].Content.String() == "" {
			t.Fatalf("line %d: %s", lines, sc.Bytes())
		}
		if strings.Contains(sc.Text(), "ops@example.com") {
			t.Errorf("line %d still has the email: %s", lines, sc.Bytes())
		}
	}
	if int64(lines) != n {
		t.Errorf("%d lines for %d rows", lines, n)
	}
}
