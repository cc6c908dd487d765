package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/gateway"
)

func newKeysCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke virtual API keys (stored hashed; a key is shown once)",
	}
	cmd.PersistentFlags().StringVarP(&cfgPath, "config", "c", "", "config file (for the store location; FOUNDRY_DB overrides)")
	var name, project string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a key for a project and print it (once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := storeFromConfig(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			k, secret := gateway.NewKey(name, project)
			if err := st.CreateKey(cmd.Context(), k); err != nil {
				return fmt.Errorf("create key: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "created %s (project %q). This is the only time the key is shown: store it now.\n", k.ID, k.Project)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "a name to recognise the key by")
	create.Flags().StringVar(&project, "project", "default", "project the key's calls are recorded under")
	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (prefixes only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := storeFromConfig(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			keys, err := st.ListKeys(cmd.Context(), project)
			if err != nil {
				return fmt.Errorf("list keys: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPROJECT\tPREFIX\tCREATED\tLAST USED\tSTATUS")
			for _, k := range keys {
				used, status := "never", "active"
				if k.LastUsedAt != nil {
					used = k.LastUsedAt.Local().Format("2006-01-02 15:04")
				}
				if k.RevokedAt != nil {
					status = "revoked " + k.RevokedAt.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Name, k.Project, k.Prefix, k.CreatedAt.Local().Format("2006-01-02 15:04"), used, status)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&project, "project", "", "only this project's keys")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key (running gateways stop accepting it within 10 seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := storeFromConfig(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.RevokeKey(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("revoke key %s: %w (list keys with `foundry keys list`)", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
