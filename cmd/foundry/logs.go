package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/store"
)

func newLogsCmd() *cobra.Command {
	var (
		cfgPath, export string
		asJSON, bodies  bool
		filters         = map[string]*[]string{}
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show captured calls (newest first), or export them as OpenAI fine-tuning JSONL",
		Example: `  foundry logs --since 1h --model gpt-4o-mini
  foundry logs --tag support --status error --json
  foundry logs --route support-bot --feedback=true --export support.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load(cfgPath, nil)
			if err != nil {
				return err
			}
			v := url.Values{}
			for name, vals := range filters {
				for _, x := range *vals {
					v.Add(name, x)
				}
			}
			q, err := gateway.ParseQuery(v, time.Now())
			if err != nil {
				return fmt.Errorf("logs: %w", err)
			}
			st, err := openStore(ctx, cfg.DB)
			if err != nil {
				return err
			}
			defer st.Close()
			if export != "" {
				return exportFineTune(cmd, st, q, export)
			}
			page, err := st.ListRecords(ctx, q)
			if err != nil {
				return fmt.Errorf("list captured calls: %w", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				for _, r := range page.Records {
					if err := enc.Encode(gateway.ViewRecord(r, bodies)); err != nil {
						return err
					}
				}
				return nil
			}
			printRecords(out, page.Records)
			if page.NextCursor != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "config file (for the store location; FOUNDRY_DB overrides)")
	f.BoolVar(&asJSON, "json", false, "one JSON object per line")
	f.BoolVar(&bodies, "bodies", true, "with --json: include request and response bodies")
	f.StringVar(&export, "export", "", "write successful chat calls matching the filters as OpenAI fine-tuning JSONL to this file (- for stdout)")
	for _, fl := range []struct{ name, help string }{
		{"since", "from this time: RFC 3339, a date, Unix seconds, or a duration ago (24h, 7d)"},
		{"until", "before this time (same forms as --since)"},
		{"model", "upstream model (repeat or comma-separate)"},
		{"provider", "provider name"},
		{"route", "model name the app asked for"},
		{"tag", "calls carrying all these tags"},
		{"status", "ok, error, or an HTTP status code"},
		{"feedback", "true: only calls with feedback; false: only without"},
		{"min-score", "feedback score at least this"},
		{"user", "the request's user field"},
		{"project", "project of the virtual key"},
		{"metadata", "key=value metadata"},
		{"limit", "rows (1-1000, default 50; ignored by --export)"},
		{"cursor", "continue from a previous page"},
	} {
		vals := new([]string)
		filters[strings.ReplaceAll(fl.name, "-", "_")] = vals
		f.StringArrayVar(vals, fl.name, nil, fl.help)
	}
	return cmd
}

func printRecords(w io.Writer, recs []store.RecordWithFeedback) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tROUTE\tPROVIDER/MODEL\tSTATUS\tLATENCY\tTOKENS\tCOST\tTAGS")
	for _, r := range recs {
		tokens := fmt.Sprintf("%d/%d", r.PromptTokens, r.CompletionTokens)
		if r.UsageEstimated {
			tokens += "~"
		}
		status := fmt.Sprint(r.Status)
		if r.Stream {
			status += " sse"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\t$%.6f\t%s\n", r.CreatedAt.Local().Format("01-02 15:04:05"), r.ID, r.Route,
			r.Provider, r.Model, status, r.Latency.Round(time.Millisecond/10), tokens, r.CostUSD, strings.Join(r.Tags, ","))
	}
	tw.Flush()
}

// exportFineTune writes every successful chat call matching q as one
// OpenAI fine-tuning example per line.
func exportFineTune(cmd *cobra.Command, st store.Store, q store.Query, path string) error {
	var w io.Writer = cmd.OutOrStdout()
	var file *os.File
	if path != "-" {
		var err error
		if file, err = os.Create(path); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer file.Close()
		w = file
	}
	bw := bufio.NewWriter(w)
	q.Status = "ok"
	var n, skipped int
	err := st.ScanRecords(cmd.Context(), q, func(r store.RecordWithFeedback) error {
		if r.Endpoint != "chat.completions" {
			return nil
		}
		ex, err := api.NewFineTuneExample(r.Request, r.Response)
		if err != nil {
			skipped++
			return nil
		}
		b, err := json.Marshal(ex)
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("export captured calls: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "exported %d examples (%d calls skipped: no usable answer) to %s\n", n, skipped, path)
	return nil
}
