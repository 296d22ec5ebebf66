package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/quant"
)

// stepKind is a recipe step: the command whose flags are its options,
// and the flags pare run sets itself.
type stepKind struct {
	command func() *cli.Command
	// managed flags are set by pare run (outputs, printing), with why.
	managed map[string]string
	// choices lists the accepted values of enumerated options, checked
	// before anything runs.
	choices map[string][]string
}

var stepKinds = map[string]stepKind{
	"prune": {command: pruneCommand,
		managed: map[string]string{"output": "pare run names outputs", "in-place": "pare run never overwrites its input",
			"plan-out": "pare run writes plan.json", "json": "pare run writes report.json"},
		choices: map[string][]string{"scope": {"global", "local"}, "target": {"channels", "params", "macs"}, "norm": {"l1", "l2"}}},
	"quant": {command: quantCommand,
		managed: map[string]string{"output": "pare run names outputs", "json": "pare run writes report.json"},
		choices: map[string][]string{
			"format":    {quant.FormatQDQ, quant.FormatDynamic, quant.FormatNBits, quant.FormatQDQ4},
			"method":    {quant.MethodRTN, quant.MethodGPTQ, quant.MethodRSQ},
			"rotate":    {quant.RotateNone, quant.RotateHadamard},
			"calibrate": {quant.CalibMinMax, quant.CalibPercentile},
		}},
	"check": {command: checkCommand, managed: map[string]string{"json": "pare run writes report.json"}},
	"bench": {command: benchCommand, managed: map[string]string{"json": "pare run writes report.json"}},
}

// fileOptions name files that must exist; they are resolved against the
// recipe's directory.
var fileOptions = map[string]bool{"calib": true, "inputs": true, "labels": true, "plan-in": true}

// thresholdOptions are check options that are also recipe gates.
var thresholdOptions = []string{"atol", "rtol", "min-cos", "min-top1", "max-acc-drop", "max-ppl-increase"}

func stepKindNames() []string {
	names := make([]string, 0, len(stepKinds))
	for n := range stepKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// optionKinds lists a step's options: the command's flags (by their long
// name) less the managed ones, with the type of value each takes.
func (k stepKind) optionKinds() map[string]string {
	out := map[string]string{}
	for _, f := range k.command().Flags {
		name := f.Names()[0]
		if _, ok := k.managed[name]; ok {
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

// checkOption checks an option's name and the type of its value.
func (k stepKind) checkOption(name string, v recipeValue) error {
	step := k.command().Name
	if why, ok := k.managed[name]; ok {
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
	if choices := k.choices[name]; choices != nil && !slices.Contains(choices, v.Text) {
		return recipeErr(v.Where, "%s: %s %q is not one of %s", step, name, v.Text, strings.Join(choices, ", "))
	}
	if step == "prune" && name == "criterion" {
		if _, err := importance.New(v.Text, "l2", 0); err != nil {
			return recipeErr(v.Where, "prune: criterion: %v", err)
		}
	}
	return nil
}

// stepArgs are the command-line arguments a step's options stand for:
// --name=value for each option (file options resolved), then the
// positional arguments.
func stepArgs(r *recipe, opts []recipeOpt, positional ...string) []string {
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
func parseStep(ctx context.Context, kind string, args []string) (*cli.Command, error) {
	c := stepKinds[kind].command()
	var got *cli.Command
	c.Action = func(_ context.Context, cmd *cli.Command) error { got = cmd; return nil }
	c.Writer, c.ErrWriter = io.Discard, io.Discard
	c.ExitErrHandler = func(context.Context, *cli.Command, error) {}
	c.OnUsageError = onUsageError
	c.HideHelp = true
	if err := c.Run(ctx, append([]string{kind}, args...)); err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("%s: options not parsed", kind)
	}
	return got, nil
}
