package recovery

import (
	"context"
	"math"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/tensor"
)

// The batches the student trains on with mixup are convex combinations of two
// calibration images, and the outputs it is trained toward are the dense
// model's outputs on those very mixes (run again here, in a session of
// its own), not on either image alone.
func TestMixupTeacherSeesTheMixes(t *testing.T) {
	dense, _ := prunedResNet(t)
	src, err := calib.Open("../fixtures/data/fmnist_calib_x.npy", dense, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var pool []tensor.Dense
	var input string
	for i := 0; i < 64; i += 16 {
		in, err := src.Batch(i, i+16)
		if err != nil {
			t.Fatal(err)
		}
		for name, x := range in {
			input, pool = name, append(pool, x)
		}
	}
	mix, err := newMixer(pool, input, 7)
	if err != nil {
		t.Fatal(err)
	}
	tch, err := newTeacher(dense)
	if err != nil {
		t.Fatal(err)
	}
	defer tch.close()
	ctx := context.Background()
	batches := &trainBatches{mix: mix, teacher: tch}
	in, ref, err := batches.next(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	x := in[input]
	v := x.Data.([]float32)
	mixed := 0
	for i := range mix.rows {
		a, b, lam := mix.sample(mix.a[i]), mix.sample(mix.b[i]), mix.lam[i]
		if lam < 0 || lam > 1 {
			t.Fatalf("mix %d: λ %g outside [0, 1]", i, lam)
		}
		for j, got := range v[i*mix.size : (i+1)*mix.size] {
			if want := lam*a[j] + (1-lam)*b[j]; math.Abs(float64(got-want)) > 1e-6 {
				t.Fatalf("mix %d value %d: %g, want %g·a + %g·b = %g", i, j, got, lam, 1-lam, want)
			}
		}
		if mix.a[i] != mix.b[i] && lam > 0.05 && lam < 0.95 {
			mixed++
		}
	}
	if mixed < mix.rows/2 {
		t.Errorf("only %d of %d samples are mixes of two images", mixed, mix.rows)
	}
	// The dense model's outputs on the mixes, in a session of their own.
	own, err := calib.NewRunner(dense, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	outs, err := own.Run(ctx, map[string]tensor.Dense{input: x})
	if err != nil {
		t.Fatal(err)
	}
	want, err := outs[dense.Graph.Outputs[0].Name].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(ref[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("teacher output %d: %g, the dense model gives %g on the mix", i, ref[i], want[i])
		}
	}
	// ...which are not its outputs on the first image of each pair.
	plain, err := tch.outputs(ctx, map[string]tensor.Dense{input: pool[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != len(ref) {
		t.Fatalf("%d outputs on a plain batch, %d on a mixed one", len(plain), len(ref))
	}
	diff := 0.0
	for i := range ref {
		diff += math.Abs(float64(ref[i] - plain[i]))
	}
	if diff == 0 {
		t.Error("the teacher's outputs on the mixes equal its outputs on plain images")
	}
	// A second batch draws other pairs.
	a0 := append([]int(nil), mix.a...)
	mix.batch()
	same := 0
	for i := range a0 {
		if a0[i] == mix.a[i] {
			same++
		}
	}
	if same == len(a0) {
		t.Error("two batches drew the same samples")
	}
}

// The cosine schedule starts at the learning rate, decays every step,
// is at half of it halfway and near zero at the last step; the
// constant one keeps it.
func TestLearningRateSchedules(t *testing.T) {
	const lr, steps = 1e-3, 200
	if got := lrAt(ScheduleCosine, lr, 0, steps); got != lr {
		t.Errorf("cosine step 0: %g, want %g", got, lr)
	}
	if got := lrAt(ScheduleCosine, lr, steps/2, steps); math.Abs(got-lr/2) > 1e-12 {
		t.Errorf("cosine halfway: %g, want %g", got, lr/2)
	}
	if got := lrAt(ScheduleCosine, lr, steps-1, steps); got > 1e-3*lr {
		t.Errorf("cosine last step: %g, want below %g", got, 1e-3*lr)
	}
	for s := 1; s < steps; s++ {
		if lrAt(ScheduleCosine, lr, s, steps) >= lrAt(ScheduleCosine, lr, s-1, steps) {
			t.Fatalf("cosine step %d does not decay", s)
		}
		if lrAt(ScheduleConstant, lr, s, steps) != lr {
			t.Fatalf("constant step %d: not %g", s, lr)
		}
	}
	if err := checkSchedule("linear"); err == nil {
		t.Error("an unknown schedule is accepted")
	}
}
