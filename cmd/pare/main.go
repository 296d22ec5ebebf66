// Command pare compresses ONNX models: it prunes coupled channels,
// quantizes weights and activations, and checks the result with
// onnxruntime.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Plans record the tool that wrote them; set once, before any work.
	prune.ToolName = "pare " + version
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startProfile()
	err := newApp().Run(ctx, os.Args)
	stopProfile()
	// Weights spilled for calibration sessions (graph.SpillHeap) are
	// not needed past the command.
	if rerr := graph.RemoveSpills(); rerr != nil && err == nil {
		fmt.Fprintf(os.Stderr, "pare: %v\n", rerr)
	}
	if err != nil {
		// A save interrupted mid-way leaves no temporary file behind.
		graph.RemoveTemps()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", errInterrupted, err)
		}
		fmt.Fprintf(os.Stderr, "pare: %v\n", err)
	}
	os.Exit(exitCode(err))
}

func newApp() *cli.Command {
	cmds := commands()
	for _, c := range cmds {
		// urfave/cli does not pass the root's handler down: flag errors
		// in a subcommand must map to the usage exit code too.
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
	}
	return &cli.Command{
		Name:    "pare",
		Usage:   "prune, quantize and check ONNX models",
		Version: version,
		Description: "Exit codes: 0 ok, 1 check failed, 2 usage error, 3 unsupported or invalid model,\n" +
			"4 onnxruntime missing or failed, 5 output not written, 130 interrupted.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ort-lib", Usage: "path to libonnxruntime (else $ONNXRUNTIME_LIB, then well-known places)"},
		},
		// Errors come back from Run so that exit codes are mapped in one place.
		ExitErrHandler:        func(context.Context, *cli.Command, error) {},
		OnUsageError:          onUsageError,
		EnableShellCompletion: true,
		Commands:              cmds,
	}
}

// commands lists the subcommands; each lives in its own file.
func commands() []*cli.Command {
	return []*cli.Command{
		// keep one entry per line, sorted
		benchCommand(),
		checkCommand(),
		inspectCommand(),
		pruneCommand(),
		quantCommand(),
		runCommand(),
		upgradeCommand(),
	}
}

func onUsageError(_ context.Context, _ *cli.Command, err error, _ bool) error {
	return usageErrorf("%v", err)
}

// printJSON writes v as the indented JSON of every command's --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
