package main

import (
	"errors"
	"fmt"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/grad"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/latency"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/pipeline"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/quant"
	"github.com/pare-dev/pare/report"
	"github.com/pare-dev/pare/tensor"
	"github.com/pare-dev/pare/upgrade"
)

// Exit codes, documented in the help text and README.
const (
	exitOK          = 0
	exitCheckFailed = 1
	exitUsage       = 2
	exitUnsupported = 3
	exitRuntime     = 4
	// exitWrite: an output could not be written (missing or read-only
	// folder, disk full); nothing partial is left behind.
	exitWrite       = 5
	exitInterrupted = 130
)

// errInterrupted marks work stopped by a signal; pare run's runs stop
// with the same error.
var errInterrupted = pipeline.ErrInterrupted

// errNothingChanged marks a command asked to change a model that would
// have written it unchanged (exit 3, like quant.ErrNothingQuantized).
var errNothingChanged = errors.New("nothing to change")

// usageError marks errors in how pare was called (flags, arguments).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps an error returned by a command to the process exit code.
// It is the only place that knows the mapping.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	}
	for _, m := range exitMappings {
		if errors.Is(err, m.target) {
			return m.code
		}
	}
	return exitUnsupported
}

// exitMappings maps each package's sentinel errors to an exit code; errors
// matching none of them are model problems (exitUnsupported).
var exitMappings = []struct {
	target error
	code   int
}{
	// {pkg.ErrX, exitCode}, one line per sentinel
	{check.ErrFailed, exitCheckFailed},
	{errNothingChanged, exitUnsupported},
	{graph.ErrOutputExists, exitUsage},
	{graph.ErrInvalidModel, exitUnsupported},
	{graph.ErrUnsafePath, exitUnsupported},
	{graph.ErrUnsupported, exitUnsupported},
	{calib.ErrData, exitUsage},
	{check.ErrData, exitUsage},
	{check.ErrRejected, exitUnsupported},
	{importance.ErrUnknownCriterion, exitUsage},
	{ort.ErrInput, exitUsage},
	{ort.ErrModel, exitUnsupported},
	{ort.ErrRun, exitRuntime},
	{ort.ErrUnavailable, exitRuntime},
	{pipeline.ErrUsage, exitUsage},
	{prune.ErrInvalidOption, exitUsage},
	{prune.ErrPlanMismatch, exitUsage},
	{prune.ErrTarget, exitUsage},
	{prune.ErrPlanInvalid, exitUsage},
	{quant.ErrOption, exitUsage},
	{graph.ErrWrite, exitWrite},
	{report.ErrWrite, exitWrite},
	{tensor.ErrFormat, exitUsage},
	{tensor.ErrTooLarge, exitUsage},
	{quant.ErrNothingQuantized, exitUnsupported},
	{graph.ErrInputShape, exitUsage},
	{pipeline.ErrInterrupted, exitInterrupted},
	// Model problems: the default, listed so that every sentinel has
	// its line.
	{graph.ErrShapeMismatch, exitUnsupported},
	// --target latency measures batch 1 only then; listed for
	// completeness.
	{latency.ErrStaticBatch, exitUnsupported},
	{upgrade.ErrUnsupported, exitUnsupported},
	{prune.ErrUnsupported, exitUnsupported},
	{grad.ErrUnsupported, exitUnsupported},
	{quant.ErrUnsupported, exitUnsupported},
	{quant.ErrInvalid, exitUnsupported},
	{tensor.ErrShape, exitUnsupported},
	{calib.ErrNotPositiveDefinite, exitUnsupported},
	// GPTQ falls back to whole-model captures when the segments refuse
	// the model at the first pass; later it is a model problem.
	{calib.ErrSegments, exitUnsupported},
	{check.ErrIncompatible, exitUnsupported},
	{check.ErrInconclusive, exitUnsupported},
}
