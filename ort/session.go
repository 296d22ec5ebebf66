package ort

import (
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pare-dev/pare/ioslice"
)

// Session is one onnxruntime inference session. Its methods are safe for
// concurrent use; Close must be called once it is no longer needed.
type Session struct {
	sess    *ort.DynamicAdvancedSession
	name    string
	inputs  []ValueInfo
	outputs []ValueInfo
	threads int
	// nOut is the number of onnxruntime session outputs; adapters say
	// where each model output is read from (see adapt.go).
	nOut     int
	adapters []adapter
	// kept maps the original model's inputs and outputs onto a pruned
	// model's (ioslice): inputs of the original's sizes are sliced.
	kept ioslice.Map

	mu     sync.Mutex
	closed bool
}

// NewSession creates a session from serialised model bytes. Models with
// external data need Options.ExternalDataDir, or NewSessionFromFile.
func NewSession(model []byte, opts Options) (*Session, error) {
	name := fmt.Sprintf("model (%d bytes)", len(model))
	if len(model) == 0 {
		return nil, fmt.Errorf("ort: %s: %w: empty model", name, ErrModel)
	}
	return newSession(name, model, "", opts)
}

// NewNamedSession is NewSession with the name errors and reports use
// (the file the bytes were read from, say).
func NewNamedSession(name string, model []byte, opts Options) (*Session, error) {
	if len(model) == 0 {
		return nil, fmt.Errorf("ort: %s: %w: empty model", name, ErrModel)
	}
	return newSession(name, model, "", opts)
}

// NewSessionFromFile creates a session from a model file; external data
// files are found relative to it.
func NewSessionFromFile(path string, opts Options) (*Session, error) {
	return newSession(path, nil, path, opts)
}

// newSession creates a session from model bytes or, when bytes is nil,
// from path.
func newSession(name string, model []byte, path string, opts Options) (*Session, error) {
	if err := Init(""); err != nil {
		return nil, err
	}
	ins, outs, err := readInfo(model, path)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w: %s", name, ErrModel, oneLine(err.Error()))
	}
	s := &Session{name: name, inputs: infoFrom(ins), outputs: infoFrom(outs), threads: opts.threads()}
	if len(s.outputs) == 0 {
		return nil, fmt.Errorf("ort: %s: %w: the model has no outputs", name, ErrModel)
	}
	for _, o := range s.outputs {
		if needsAdapter(o) && model == nil {
			// The adapter rewrite works on bytes; external data is then
			// found next to the original file.
			var dir string
			if model, dir, err = readModel(path); err != nil {
				return nil, fmt.Errorf("ort: %s: %w", name, err)
			}
			if opts.ExternalDataDir == "" {
				opts.ExternalDataDir = dir
			}
			break
		}
	}
	adapted, sessOut, adapters, err := adaptModel(model, s.outputs)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w", name, err)
	}
	if adapted != nil {
		model = adapted
	}
	s.adapters, s.nOut = adapters, len(sessOut)
	so, err := opts.sessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if model != nil {
		s.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(model, names(s.inputs), sessOut, so)
	} else {
		s.sess, err = ort.NewDynamicAdvancedSession(path, names(s.inputs), sessOut, so)
	}
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w: %s", name, ErrModel, oneLine(err.Error()))
	}
	if s.kept, err = keptPositions(s.sess); err != nil {
		s.sess.Destroy()
		return nil, fmt.Errorf("ort: %s: %w: %s", name, ErrModel, err)
	}
	return s, nil
}

// keptPositions reads the ioslice map from the model's custom metadata.
func keptPositions(sess *ort.DynamicAdvancedSession) (ioslice.Map, error) {
	md, err := sess.GetModelMetadata()
	if err != nil {
		return nil, err
	}
	defer md.Destroy()
	v, ok, err := md.LookupCustomMetadataMap(ioslice.Key)
	if err != nil || !ok {
		return ioslice.Map{}, err
	}
	return ioslice.Parse(v)
}

// Kept maps the original model's inputs and outputs onto this one's
// when it is a pruned model whose interface lost positions (a KV cache
// with fewer heads); empty otherwise. Run slices inputs given at the
// original's sizes.
func (s *Session) Kept() ioslice.Map { return s.kept }

// readInfo asks onnxruntime for the model's inputs and outputs. It builds
// a throwaway session, so graph optimisation is turned off to keep it
// cheap.
func readInfo(model []byte, path string) ([]ort.InputOutputInfo, []ort.InputOutputInfo, error) {
	if ins, outs, ok := readInfoExternal(model, path); ok {
		return ins, outs, nil
	}
	if model != nil {
		return ort.GetInputOutputInfoWithONNXData(model)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, err
	}
	defer so.Destroy()
	so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll)
	so.SetIntraOpNumThreads(1)
	return ort.GetInputOutputInfoWithOptions(path, so)
}

// Inputs describes the inputs Run must be given, in model order.
func (s *Session) Inputs() []ValueInfo { return append([]ValueInfo{}, s.inputs...) }

// Outputs describes the model outputs, in model order.
func (s *Session) Outputs() []ValueInfo { return append([]ValueInfo{}, s.outputs...) }

// Threads returns the number of intra-op threads the session uses.
func (s *Session) Threads() int { return s.threads }

// Name returns the model path, or a description of model bytes.
func (s *Session) Name() string { return s.name }

// Close destroys the onnxruntime session. Calling it again does nothing.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.sess.Destroy()
}

// InputsOfFile describes the inputs of the model file at path without
// building a session to run it.
func InputsOfFile(path string) ([]ValueInfo, error) {
	if err := Init(""); err != nil {
		return nil, err
	}
	ins, _, err := readInfo(nil, path)
	if err != nil {
		return nil, fmt.Errorf("ort: %s: %w: %s", path, ErrModel, oneLine(err.Error()))
	}
	return infoFrom(ins), nil
}
