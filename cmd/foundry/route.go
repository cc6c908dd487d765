package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
)

func newRouteCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "route",
		Short: "Set, show, audit and roll back routes (model names whose traffic a policy spreads over models)",
		Long: `A route is a model name apps call (e.g. support-bot). Its policy picks the model that
answers: a weighted canary (sticky per user if asked), a fallback chain, shadow copies to
candidates, a cascade that escalates to the teacher when a validator fails, and automatic
rollback when a candidate's live quality drops. Every change is a new version in the store;
running gateways pick it up within seconds.`,
	}
	cmd.PersistentFlags().StringVarP(&cfgPath, "config", "c", "", "config file (store location, providers for checking models; FOUNDRY_DB overrides)")

	var (
		file, canary, sticky, actor, comment string
		fallback, shadow                     []string
		noCheck                              bool
	)
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Store a new version of a route's policy (validated first)",
		Example: `  foundry route set support-bot --canary teacher=90,student=10 --sticky user
  foundry route set support-bot --file policy.yaml --comment "cascade on the JSON schema"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var policy []byte
			switch {
			case file != "" && canary != "":
				return fmt.Errorf("route set: give --file or --canary, not both")
			case file != "":
				var err error
				if file == "-" {
					policy, err = io.ReadAll(cmd.InOrStdin())
				} else {
					policy, err = os.ReadFile(file)
				}
				if err != nil {
					return fmt.Errorf("route set: read the policy: %w", err)
				}
			case canary != "":
				arms, err := route.ParseCanary(canary)
				if err != nil {
					return fmt.Errorf("route set: %w", err)
				}
				p := route.Policy{Arms: arms, Fallback: fallback}
				if sticky != "" {
					p.Sticky = &route.Sticky{Key: sticky}
				}
				if len(shadow) > 0 {
					p.Shadow = &route.Shadow{Targets: shadow}
				}
				policy, _ = json.Marshal(p)
			default:
				return fmt.Errorf("route set: give the policy with --file policy.yaml or --canary teacher=90,student=10")
			}
			r, st, err := routerFromConfig(cmd, cfgPath, !noCheck)
			if err != nil {
				return err
			}
			defer st.Close()
			if actor == "" {
				actor = currentUser()
			}
			rv, err := r.Put(cmd.Context(), args[0], policy, route.Change{Actor: actor, Comment: comment})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "route %s is now at version %d (running gateways reload it within seconds)\n", rv.Name, rv.Version)
			return printShares(cmd.OutOrStdout(), rv.Policy)
		},
	}
	set.Flags().StringVarP(&file, "file", "f", "", "policy file, YAML or JSON (- for stdin)")
	set.Flags().StringVar(&canary, "canary", "", "arms as model=weight,model=weight (e.g. teacher=90,student=10)")
	set.Flags().StringVar(&sticky, "sticky", "", `with --canary: keep each user on one arm by "user" or "metadata.<key>"`)
	set.Flags().StringSliceVar(&fallback, "fallback", nil, "with --canary: models tried in order when the chosen one fails")
	set.Flags().StringSliceVar(&shadow, "shadow", nil, "with --canary: models mirrored off the request path")
	set.Flags().StringVar(&actor, "actor", "", "who makes the change (default: $USER)")
	set.Flags().StringVarP(&comment, "comment", "m", "", "why, for the history")
	set.Flags().BoolVar(&noCheck, "no-check-models", false, "do not check that the models resolve with this config's providers")

	show := &cobra.Command{
		Use:   "show [NAME]",
		Short: "Show a route's live policy (or list every route)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := storeFromConfig(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				list, err := st.ListRoutes(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ROUTE\tVERSION\tCHANGED\tBY\tARMS")
				for _, rv := range list {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", rv.Name, rv.Version, rv.CreatedAt.Local().Format("2006-01-02 15:04"), rv.Actor, sharesLine(rv.Policy))
				}
				return tw.Flush()
			}
			rv, err := st.GetRoute(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("route show: %w (list routes with `foundry route show`)", err)
			}
			fmt.Fprintf(out, "route %s, version %d, by %s at %s", rv.Name, rv.Version, rv.Actor, rv.CreatedAt.Local().Format("2006-01-02 15:04:05"))
			if rv.Comment != "" {
				fmt.Fprintf(out, ": %s", rv.Comment)
			}
			fmt.Fprintln(out)
			if err := printShares(out, rv.Policy); err != nil {
				return err
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, rv.Policy, "", "  "); err != nil {
				return fmt.Errorf("route show: version %d's policy is not JSON: %w", rv.Version, err)
			}
			fmt.Fprintf(out, "%s\n", pretty.Bytes())
			return nil
		},
	}

	history := &cobra.Command{
		Use:   "history NAME",
		Short: "List every version of a route: who changed it, when and why (rollbacks included)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := storeFromConfig(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			hist, err := st.RouteHistory(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("route history: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tCHANGED\tBY\tARMS\tCOMMENT")
			for _, rv := range hist {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", rv.Version, rv.CreatedAt.Local().Format("2006-01-02 15:04:05"), rv.Actor, sharesLine(rv.Policy), rv.Comment)
			}
			return tw.Flush()
		},
	}

	var to int
	rollback := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Make an earlier version's policy live again (as a new version)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, st, err := routerFromConfig(cmd, cfgPath, false)
			if err != nil {
				return err
			}
			defer st.Close()
			if actor == "" {
				actor = currentUser()
			}
			rv, err := r.Rollback(cmd.Context(), args[0], to, route.Change{Actor: actor, Comment: comment})
			if err != nil {
				return fmt.Errorf("route rollback: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "route %s is now at version %d: %s\n", rv.Name, rv.Version, rv.Comment)
			return printShares(cmd.OutOrStdout(), rv.Policy)
		},
	}
	rollback.Flags().IntVar(&to, "to", 0, "version to restore (default: the one before the latest)")
	rollback.Flags().StringVar(&actor, "actor", "", "who makes the change (default: $USER)")
	rollback.Flags().StringVarP(&comment, "comment", "m", "", "why, for the history")

	cmd.AddCommand(set, show, history, rollback)
	return cmd
}

// routerFromConfig opens the store and a router over it (not started: the
// CLI only writes versions). With check, models are checked against the
// config's providers, aliases and engine models.
func routerFromConfig(cmd *cobra.Command, cfgPath string, check bool) (*route.Router, store.Store, error) {
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	var resolve route.Resolver
	if check {
		reg, err := buildRegistry(cfg, log)
		if err != nil {
			return nil, nil, err
		}
		local := map[string]bool{}
		for _, m := range cfg.Engine.Models {
			local[m.Name], local["engine/"+m.Name] = true, true
		}
		if len(reg.Providers()) == 0 && len(local) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning: no providers are configured here, so model names are not checked (the gateway refuses none of them until a call fails)")
		} else {
			check := route.RegistryResolver(reg)
			resolve = func(ctx context.Context, m string) error {
				if local[m] {
					return nil
				}
				return check(ctx, m)
			}
		}
	}
	st, err := openStore(cmd.Context(), cfg.DB)
	if err != nil {
		return nil, nil, err
	}
	return route.New(route.Options{Store: st, Resolve: resolve, Logger: log}), st, nil
}

// printShares prints each arm's share of traffic.
func printShares(w io.Writer, policy json.RawMessage) error {
	_, err := fmt.Fprintf(w, "arms: %s\n", sharesLine(policy))
	return err
}

func sharesLine(policy json.RawMessage) string {
	p, err := route.ParsePolicy(policy)
	if err != nil {
		return "(unreadable policy: " + err.Error() + ")"
	}
	sum := 0.0
	ws := make([]float64, len(p.Arms))
	for i, a := range p.Arms {
		ws[i] = 1
		if a.Weight != nil {
			ws[i] = *a.Weight
		}
		sum += ws[i]
	}
	parts := make([]string, 0, len(p.Arms)+2)
	for i, a := range p.Arms {
		name := a.Name
		if name == "" {
			name = a.Model
		}
		s := fmt.Sprintf("%s %.4g%%", name, 100*ws[i]/sum)
		if name != a.Model {
			s += " (" + a.Model + ")"
		}
		if a.EscalateTo != "" {
			s += " → " + a.EscalateTo + " on failed validation"
		}
		parts = append(parts, s)
	}
	if p.Sticky != nil {
		parts = append(parts, "sticky by "+p.Sticky.Key)
	}
	if len(p.Fallback) > 0 {
		parts = append(parts, "fallback: "+strings.Join(p.Fallback, ", "))
	}
	if p.Shadow != nil {
		parts = append(parts, "shadow: "+strings.Join(p.Shadow.Targets, ", "))
	}
	if p.Rollback != nil {
		parts = append(parts, "auto-rollback on")
	}
	return strings.Join(parts, "; ")
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "cli"
}
