package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
)

// saveVerified writes m to out through graph.Stage, runs the written
// files once in onnxruntime (see check.VerifyFile) and only then makes
// them visible, so that prune and quant never write a model the runtime
// rejects. The model is dropped from memory before the runtime loads the
// files: the caller must not use m afterwards. It returns what was done
// for the report: "ok", or why the model was not verified. data is the
// calibration file the model was made with ("" for none): the run takes
// its first sample rather than synthetic inputs. A rejection
// is an error naming the node; a missing runtime or an inconclusive run
// is only a note.
func saveVerified(ctx context.Context, cmd string, m *graph.Model, out string, opts graph.SaveOptions, ref, data, ortLib string, skip bool) (string, error) {
	verify := "skipped (--no-verify)"
	if !skip {
		if err := ort.Init(ortLib); err != nil {
			verify, skip = fmt.Sprintf("skipped: %v", err), true
		}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if skip {
		if err := m.Save(out, opts); err != nil {
			return "", fmt.Errorf("%s: %w", cmd, err)
		}
		return verify, nil
	}
	staged, err := m.Stage(out, opts)
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	// The model now lives in the staged files: return its memory before
	// onnxruntime loads them, so that the peak is one copy, not two.
	m = nil
	runtime.GC()
	debug.FreeOSMemory()
	switch err := check.VerifyFileOn(ctx, staged.VerifyPath(), ref, data); {
	case err == nil:
		verify = "ok"
	case ctx.Err() != nil:
		staged.Discard()
		return "", ctx.Err()
	case errors.Is(err, check.ErrInconclusive):
		// Reported as "onnxruntime verification inconclusive: why".
		verify = "inconclusive: " + strings.TrimPrefix(err.Error(), check.ErrInconclusive.Error()+": ")
	default:
		staged.Discard()
		return "", fmt.Errorf("%s: nothing written: %w (--no-verify writes it anyway)", cmd, err)
	}
	if err := ctx.Err(); err != nil {
		staged.Discard()
		return "", err
	}
	if err := staged.Commit(); err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	return verify, nil
}
