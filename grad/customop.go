package grad

import (
	"fmt"
	"hash"
	"hash/fnv"
	"runtime"
	"sync"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Helpers shared by the ops grad adds through gorgonia's Op interface
// (grouped convolution, constant padding, nearest upsampling). Each
// op's String spells out every parameter: gorgonia merges nodes with
// the same op hash and inputs, so two ops that differ in a parameter
// must hash differently.

// hashString is the Hashcode of an op from its String.
func hashString(s string) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, s)
	return h.Sum32()
}

func writeHash(h hash.Hash, s string) { fmt.Fprint(h, s) }

// sameType is the type a → a (→ a …) of an op of arity k whose inputs
// and output are all tensors of the same kind.
func sameType(k int) hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, k+1)
	for i := range ts {
		ts[i] = a
	}
	return hm.NewFnType(ts...)
}

// shapeOf reads the shape of an op input at graph-building time.
func shapeOf(d G.DimSizer) (tensor.Shape, error) {
	s, ok := d.(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("input shape is %T", d)
	}
	return s, nil
}

// data64 returns the float64 values of a tensor value in row-major
// order (materialising a view).
func data64(v G.Value) ([]float64, tensor.Shape, error) {
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, nil, fmt.Errorf("value of type %T (tensor needed)", v)
	}
	if t.RequiresIterator() {
		if vw, ok := t.(tensor.View); ok {
			t = vw.Materialize()
		}
	}
	d, ok := t.Data().([]float64)
	if !ok {
		return nil, nil, fmt.Errorf("value of dtype %v (float64 only)", t.Dtype())
	}
	return d, t.Shape(), nil
}

// sameSize64 returns the float64 values of an op's two inputs of one
// size (an elementwise gradient's input or output, and the gradient),
// with the shape of the second; what names the op in the error.
func sameSize64(in []G.Value, what string) (a, b []float64, s tensor.Shape, err error) {
	if a, _, err = data64(in[0]); err != nil {
		return nil, nil, nil, err
	}
	if b, s, err = data64(in[1]); err != nil {
		return nil, nil, nil, err
	}
	if len(a) != len(b) {
		return nil, nil, nil, fmt.Errorf("%s: %d values and %d gradients", what, len(a), len(b))
	}
	return a, b, s, nil
}

func newDense(shape tensor.Shape, data []float64) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(data))
}

// parallel runs f(i) for i in [0, n) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	parallelScratch(n, 0, func(_ []float64, i int) { f(i) })
}

// parallelScratch runs f(scratch, i) for i in [0, n) on up to
// GOMAXPROCS goroutines, each with its own zeroed scratch of size
// floats, and returns the scratches (one per goroutine).
func parallelScratch(n, size int, f func(scratch []float64, i int)) [][]float64 {
	workers := max(min(runtime.GOMAXPROCS(0), n), 1)
	scratch := make([][]float64, workers)
	for w := range scratch {
		scratch[w] = make([]float64, size)
	}
	if workers == 1 {
		for i := range n {
			f(scratch[0], i)
		}
		return scratch
	}
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(scratch[w], i)
			}
		}()
	}
	wg.Wait()
	return scratch
}

// strides of a row-major shape.
func strides(s []int) []int {
	st := make([]int, len(s))
	k := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = k
		k *= s[i]
	}
	return st
}

// eachIndex calls f with every multi-index of shape in row-major order
// and its flat offset.
func eachIndex(shape []int, f func(idx []int, off int)) {
	total := 1
	for _, d := range shape {
		total *= d
	}
	idx := make([]int, len(shape))
	for off := range total {
		f(idx, off)
		for a := len(shape) - 1; a >= 0; a-- {
			idx[a]++
			if idx[a] < shape[a] {
				break
			}
			idx[a] = 0
		}
	}
}

// noSymDiff is the SymDiff of an op that is only ever a gradient (its
// own derivative is never needed).
func noSymDiff(name string) error {
	return fmt.Errorf("%w: %s has no second derivative", ErrUnsupported, name)
}
