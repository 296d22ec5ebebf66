package pipeline

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/report"
)

// A Step is one kind of recipe step: the command whose flags are its
// options, so that a recipe step is parsed exactly as the command line
// is, and how the parsed step runs.
type Step struct {
	// Command returns the command (a fresh one per call).
	Command func() *cli.Command
	// Managed flags are set by pare run (outputs, printing), with why.
	Managed map[string]string
	// Choices lists the accepted values of enumerated options, checked
	// when the recipe is read so that the message names the option's
	// line. They come from the packages that define the values.
	Choices map[string][]string
	// Args are the positional arguments of the step for a run whose
	// input model is input and whose newest model is current.
	Args func(input, current string) []string
	// Prepare checks the parsed options and returns the step's work. It
	// runs once per step and sweep setting before anything runs (with
	// placeholder paths), and again before the step runs.
	Prepare func(cmd *cli.Command, env *Env) (Work, error)
}

// Work runs a prepared step.
type Work func(ctx context.Context) (Output, error)

// Env is what a step is given besides its options.
type Env struct {
	// Input is the model the run starts from, Current the newest model.
	Input, Current string
	// Stage is the directory the step writes into; its files move into
	// the run directory when it succeeds. Base names the step's files
	// (Base+".onnx", Base+".json"); Plan is the name of a plan file.
	Stage, Base, Plan string
	OrtLib            string
	Logf              func(format string, args ...any)
	// Report is the run's report; steps fill the figures they measure.
	Report *report.Run
	// Thresholds says whether the check step was given thresholds (its
	// own or the recipe's gates); without, it only measures.
	Thresholds bool
}

// Output is what a step wrote: files in Env.Stage, the name of the model
// among them (empty when it writes none), and the gate results of a
// check step.
type Output struct {
	Files []string
	Model string
	Gates []report.Gate
}

// Steps are the step kinds a recipe may use, by name.
type Steps map[string]Step

// fileOptions name files that must exist; they are resolved against the
// recipe's directory.
var fileOptions = map[string]bool{"calib": true, "inputs": true, "labels": true, "plan-in": true}

// dataOptions are the file options that feed a model's inputs by calib's
// rule (.npy or .npz).
var dataOptions = map[string]bool{"calib": true, "inputs": true}

// thresholdOptions are check options that are also recipe gates.
var thresholdOptions = []string{"atol", "rtol", "min-cos", "min-top1", "max-acc-drop", "max-ppl-increase"}

func (ss Steps) names() []string {
	names := make([]string, 0, len(ss))
	for n := range ss {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// optionKinds lists a step's options: the command's flags (by their long
// name) less the managed ones, with the type of value each takes.
func (k Step) optionKinds() map[string]string {
	out := map[string]string{}
	for _, f := range k.Command().Flags {
		name := f.Names()[0]
		if _, ok := k.Managed[name]; ok {
			continue
		}
		switch f.(type) {
		case *cli.BoolFlag:
			out[name] = "bool"
		case *cli.FloatFlag:
			out[name] = "number"
		case *cli.IntFlag, *cli.Int64Flag:
			out[name] = "integer"
		case *cli.Uint64Flag:
			out[name] = "non-negative integer"
		default:
			out[name] = "string"
		}
	}
	return out
}

// checkOption checks an option's name, the type of its value and, for
// enumerated options, the value.
func (k Step) checkOption(name string, v value) error {
	step := k.Command().Name
	if why, ok := k.Managed[name]; ok {
		return recipeErr(v.Where, "%s: option %q is not allowed in a recipe (%s)", step, name, why)
	}
	kinds := k.optionKinds()
	typ, ok := kinds[name]
	if !ok {
		known := make([]string, 0, len(kinds))
		for n := range kinds {
			known = append(known, n)
		}
		sort.Strings(known)
		return recipeErr(v.Where, "%s: unknown option %q (known: %s)", step, name, strings.Join(known, ", "))
	}
	var err error
	switch typ {
	case "bool":
		_, err = strconv.ParseBool(v.Text)
	case "number":
		_, err = strconv.ParseFloat(v.Text, 64)
	case "integer":
		_, err = strconv.ParseInt(v.Text, 10, 64)
	case "non-negative integer":
		_, err = strconv.ParseUint(v.Text, 10, 64)
	}
	if err != nil {
		return recipeErr(v.Where, "%s: %s wants a %s, got %q", step, name, typ, v.Text)
	}
	if choices := k.Choices[name]; choices != nil && !slices.Contains(choices, v.Text) {
		return recipeErr(v.Where, "%s: %s %q is not one of %s", step, name, v.Text, strings.Join(choices, ", "))
	}
	return nil
}

// stepArgs are the command-line arguments a step's options stand for:
// --name=value for each option (file options resolved), then the
// positional arguments.
func stepArgs(r *Recipe, opts []option, positional ...string) []string {
	var args []string
	for _, o := range opts {
		v := o.Value.Text
		if fileOptions[o.Name] {
			v = r.resolve(v)
		}
		args = append(args, "--"+o.Name+"="+v)
	}
	return append(append(args, "--"), positional...)
}

// parseStep parses args with the step's own command, so that defaults,
// types and the command's checks are the command line's, and returns the
// parsed command.
func parseStep(ctx context.Context, k Step, args []string) (*cli.Command, error) {
	c := k.Command()
	var got *cli.Command
	c.Action = func(_ context.Context, cmd *cli.Command) error { got = cmd; return nil }
	c.Writer, c.ErrWriter = io.Discard, io.Discard
	c.ExitErrHandler = func(context.Context, *cli.Command, error) {}
	c.OnUsageError = func(_ context.Context, _ *cli.Command, err error, _ bool) error { return err }
	c.HideHelp = true
	if err := c.Run(ctx, append([]string{c.Name}, args...)); err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("%s: options not parsed", c.Name)
	}
	return got, nil
}
