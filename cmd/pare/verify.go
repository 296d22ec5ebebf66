package main

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
)

// verifyModel runs the model about to be written once in onnxruntime (see
// check.Verify), so that prune and quant never write a model the runtime
// rejects. It returns what was done for the report: "ok", or why the
// model was not verified. A rejection is an error naming the node; a
// missing runtime or an inconclusive run is only a note.
func verifyModel(ctx context.Context, cmd string, m *graph.Model, ref, ortLib string, skip bool) (string, error) {
	if skip {
		return "skipped (--no-verify)", nil
	}
	if err := ort.Init(ortLib); err != nil {
		return fmt.Sprintf("skipped: %v", err), nil
	}
	// Serialised with every tensor inline; protobuf cannot hold more.
	if n := proto.Size(m.Proto); int64(n) >= graph.InlineLimit {
		return fmt.Sprintf("skipped: %d bytes is too large to verify in memory", n), nil
	}
	b, err := m.Marshal()
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	switch err := check.Verify(ctx, b, ref); {
	case err == nil:
		return "ok", nil
	case ctx.Err() != nil:
		return "", ctx.Err()
	case errors.Is(err, check.ErrInconclusive):
		return err.Error(), nil
	default:
		return "", fmt.Errorf("%s: nothing written: %w (--no-verify writes it anyway)", cmd, err)
	}
}
