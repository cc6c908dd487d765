// Command foundry is the Foundry binary: gateway, curation, training, eval and routing.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "foundry",
		Short:         "Foundry: an OpenAI-compatible gateway that turns your traffic into your own small model",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Each subcommand lives in its own file as newXxxCmd(); add one line here per command.
	root.AddCommand(
		newVersionCmd(),
		newServeCmd(),
		newLogsCmd(),
		newKeysCmd(),
		newEngineCmd(),
		newPullCmd(),
		newRunCmd(),
		newDatasetCmd(),
		newRouteCmd(),
		newEvalCmd(),
		newCostsCmd(),
		newTrainCmd(),
		newMergeCmd(),
		newDeployCmd(),
		newQuickstartCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Foundry's version",
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "foundry", version)
		},
	}
}
