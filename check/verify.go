package check

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

var (
	// ErrRejected means onnxruntime refused a model that pare was about
	// to write: it could not build a session on it, or running it once on
	// synthetic inputs failed while the input model ran.
	ErrRejected = errors.New("onnxruntime rejects the model")
	// ErrInconclusive means the synthetic run failed on the input model
	// too, so it says nothing about the written one.
	ErrInconclusive = errors.New("verification inconclusive")
)

// Verify sizes: symbolic dims become small and integer inputs (token ids,
// masks, positions) are drawn from [0, 2), valid for any vocabulary.
const (
	verifyDim   = 8
	verifyBatch = 1
)

// Verify builds an onnxruntime session on model (serialised, tensors
// inline) and runs it once on synthetic inputs. When the session cannot
// be built it returns ErrRejected naming the node onnxruntime blames.
// When only the run fails and ref (the model the result was made from,
// a file path) is not empty, ref runs on the same inputs: if it fails
// too the inputs are at fault and Verify returns ErrInconclusive.
func Verify(ctx context.Context, model []byte, ref string) error {
	s, err := ort.NewSession(model, ort.Options{})
	return verifySession(ctx, s, err, ref, "")
}

// verifyInputs returns the inputs of the verification run and what they
// are: the first sample of data, or synthetic inputs when data is empty.
func verifyInputs(inputs []ort.ValueInfo, data string) (map[string]tensor.Dense, string, error) {
	if data == "" {
		in, err := Synthesize(inputs, SynthOptions{Samples: verifyBatch, Dim: verifyDim})
		return in, "synthetic inputs", err
	}
	src, err := FromFile(data, inputs)
	if err != nil {
		return nil, "", err
	}
	defer src.Close()
	in, err := src.Batch(0, min(int64(verifyBatch), src.Rows()))
	return in, "the first sample of " + data, err
}

// VerifyFile is Verify on a model file (with its external data beside
// it), so that a model of any size is checked without holding it in
// memory.
func VerifyFile(ctx context.Context, path, ref string) error {
	return VerifyFileOn(ctx, path, ref, "")
}

// VerifyFileOn is VerifyFile run on the first sample of the data file
// data (the --calib the model was made with) instead of synthetic
// inputs, when data is not empty: a model whose inputs constrain each
// other (a KV cache's past length and its mask's length) runs on real
// data where synthetic sizes would not fit it.
func VerifyFileOn(ctx context.Context, path, ref, data string) error {
	s, err := ort.NewSessionFromFile(path, ort.Options{})
	return verifySession(ctx, s, err, ref, data)
}

func verifySession(ctx context.Context, s *ort.Session, err error, ref, data string) error {
	if err != nil {
		if errors.Is(err, ort.ErrUnavailable) {
			return err
		}
		return rejected(err)
	}
	defer s.Close()
	if data == "" {
		// A decoding step's synthetic sizes do not fit together (the
		// mask must cover the past and the new tokens); two steps
		// decoded from an empty cache always do.
		if d, derr := NewDecoder(s); derr == nil {
			ids, _ := tensor.New([]int64{verifyBatch, 2}, make([]int64, 2*verifyBatch))
			if _, err = d.Run(ctx, s, ids); err == nil || ctx.Err() != nil {
				return err
			}
			return rejected(err)
		}
	}
	inputs := s.Inputs()
	if len(s.Kept()) > 0 && ref != "" {
		// The model's cache lost heads: inputs are made at the
		// original's sizes, which the session slices (ioslice), so
		// that ref runs on the same ones.
		if inputs, err = ort.InputsOfFile(ref); err != nil {
			return fmt.Errorf("%w: %v", ErrInconclusive, err)
		}
	}
	in, what, err := verifyInputs(inputs, data)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInconclusive, err)
	}
	if _, err = s.Run(ctx, in, nil); err == nil || ctx.Err() != nil {
		return err
	}
	if ref != "" {
		if rs, rerr := ort.NewSessionFromFile(ref, ort.Options{}); rerr == nil {
			_, rerr = rs.Run(ctx, in, nil)
			rs.Close()
			if rerr != nil {
				return fmt.Errorf("%w: %s also fails on %s: %s", ErrInconclusive, ref, what, oneLine(rerr.Error()))
			}
		}
	}
	return rejected(err)
}

// onnxruntime names the failing node in several phrasings, depending on
// whether loading, type checking, kernel lookup or running failed.
var nodePatterns = []*regexp.Regexp{
	regexp.MustCompile(`[Nn]ode \(([^)]+)\)`),                // Node (name) Op (MatMul) ...
	regexp.MustCompile(`Name:'([^']+)'`),                     // running MatMul node. Name:'x'
	regexp.MustCompile(`In Node, \("([^"]*)"`),               // In Node, ("name", Op, ...)
	regexp.MustCompile(`node with name '([^']+)'`),           // Could not find an implementation for X node with name 'y'
	regexp.MustCompile(`in node \(([^)]+)\)`),                // Type Error: ... in node (name)
	regexp.MustCompile(`[Nn]ode:? '?([A-Za-z0-9_./:\-]+)'?`), // fallback
}

// FailingNode extracts the node name from an onnxruntime error message,
// or "" when the message names none.
func FailingNode(msg string) string {
	for _, re := range nodePatterns {
		if m := re.FindStringSubmatch(msg); m != nil && m[1] != "" {
			return m[1]
		}
	}
	return ""
}

func rejected(err error) error {
	msg := oneLine(err.Error())
	if n := FailingNode(msg); n != "" {
		return fmt.Errorf("%w at node %q: %s", ErrRejected, n, msg)
	}
	return fmt.Errorf("%w: %s", ErrRejected, msg)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
