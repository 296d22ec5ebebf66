// Command kd measures the knowledge-distillation recovery (pare prune
// --recover kd): it prunes a trained Fashion-MNIST fixture with the
// default data-aware path (obs, sensitivity allocation, reconstruct),
// then distils copies of the pruned model toward the dense one on the
// calibration images for each learning rate, and prints the top-1
// accuracy on the 1000 test images before and after, with seconds per
// step:
//
//	go run ./bench/kd -model fmnist_resnet_bn_op17 -ratio 0.7 -steps 200 -lrs 1e-3,1e-4 \
//	    [-data fixtures/data/fmnist_unlabelled_x.npy]
//
// -schedule constant|cosine sets the learning rate over the steps and
// -mixup distils on mixes of two inputs, with the dense model's outputs
// on each mix (recovery.DistillConfig). Peak memory: run the built
// binary under /usr/bin/time -v.
//
// With -pruned, an already pruned model (the output of pare prune) is
// distilled toward -model instead, on -data, and each learning rate's
// result is written to -out for pare check (the decoder, whose quality
// is a perplexity); for a Fashion-MNIST fixture the top-1 on the test
// images is printed too, with CPU seconds (user+sys) per step:
//
//	go run ./bench/kd -model llama_char_op17 -pruned /tmp/plain.onnx -steps 200 -lrs 1e-3,3e-3 \
//	    -data fixtures/data/llama_unlabelled_ids.npy -out /tmp/kd
//	go run ./bench/kd -model fmnist_mobilenet_op17 -pruned /tmp/plain.onnx -steps 200 -lrs 1e-3 \
//	    -schedule cosine -mixup -data fixtures/data/fmnist_unlabelled_x.npy -out /tmp/kd
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/pruner"
	"github.com/pare-dev/pare/recovery"
	"github.com/pare-dev/pare/tensor"
)

var (
	model  = flag.String("model", "fmnist_resnet_bn_op17", "fixture under fixtures/models")
	ratio  = flag.Float64("ratio", 0.7, "share of parameters removed")
	steps  = flag.Int("steps", 200, "distillation steps")
	batch  = flag.Int("batch", 32, "samples per step")
	lrs    = flag.String("lrs", "1e-3,1e-4", "learning rates, comma-separated")
	data   = flag.String("data", "fixtures/data/fmnist_calib_x.npy", "unlabelled images to distil on (pruning calibrates on fmnist_calib_x.npy)")
	pruned = flag.String("pruned", "", "distil this pruned model toward -model instead of pruning it here")
	out    = flag.String("out", "", "with -pruned: directory to write each learning rate's model to (kd-LR.onnx)")
	sched  = flag.String("schedule", recovery.DefaultSchedule, "learning-rate schedule: constant or cosine")
	mixup  = flag.Bool("mixup", false, "distil on mixes of two inputs with the dense outputs on each mix")
	seed   = flag.Uint64("seed", 1, "seed of the mixes")
)

func main() {
	flag.Parse()
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "kd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	if err := ort.Init(""); err != nil {
		return err
	}
	path := "fixtures/models/" + *model + ".onnx"
	if *pruned != "" {
		return distilPruned(ctx, path)
	}
	dense, err := graph.Load(path)
	if err != nil {
		return err
	}
	m, err := graph.Load(path)
	if err != nil {
		return err
	}
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		return err
	}
	const calibFile = "fixtures/data/fmnist_calib_x.npy"
	_, err = pruner.Run(ctx, m, an, nil, pruner.Config{
		Settings: prune.Settings{Criterion: "obs", Target: "params", Ratio: *ratio, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true},
		Calib:    calibFile, Allocate: "sensitivity", Reconstruct: true,
	})
	if err != nil {
		return err
	}
	x, y, err := testSet()
	if err != nil {
		return err
	}
	denseAcc, err := accuracy(ctx, dense, x, y)
	if err != nil {
		return err
	}
	before, err := accuracy(ctx, m, x, y)
	if err != nil {
		return err
	}
	fmt.Printf("%s, %.0f%% of parameters removed (obs + sensitivity + reconstruct): dense %.1f%%, pruned %.1f%%\n", *model, 100**ratio, 100*denseAcc, 100*before)
	fmt.Println("| lr | steps | after kd | s/step |")
	fmt.Println("|---|---|---|---|")
	for _, s := range strings.Split(*lrs, ",") {
		lr, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		student, notes, per, err := distil(ctx, m, dense, lr)
		if err != nil {
			return err
		}
		after, err := accuracy(ctx, student, x, y)
		if err != nil {
			return err
		}
		fmt.Printf("| %g | %d | %.1f%% | %.2f |\n", lr, *steps, 100*after, per)
		fmt.Fprintln(os.Stderr, notes)
	}
	return nil
}

func testSet() (tensor.Dense, []int64, error) {
	read := func(p string) (tensor.Dense, error) {
		f, err := tensor.OpenNpy(p)
		if err != nil {
			return tensor.Dense{}, err
		}
		defer f.Close()
		return f.ReadAll()
	}
	x, err := read("fixtures/data/fmnist_test_x.npy")
	if err != nil {
		return x, nil, err
	}
	yd, err := read("fixtures/data/fmnist_test_y.npy")
	if err != nil {
		return x, nil, err
	}
	y, err := yd.Int64s()
	return x, y, err
}

func accuracy(ctx context.Context, m *graph.Model, x tensor.Dense, y []int64) (float64, error) {
	b, err := m.Marshal()
	if err != nil {
		return 0, err
	}
	s, err := ort.NewSession(b, ort.Options{Threads: runtime.NumCPU()})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	outs, err := s.RunBatched(ctx, map[string]tensor.Dense{s.Inputs()[0].Name: x}, nil, 250)
	if err != nil {
		return 0, err
	}
	logits, err := outs[0].Float32s()
	if err != nil {
		return 0, err
	}
	return check.Top1(logits, y), nil
}

// distilPruned distils the model of -pruned toward the dense model at
// path for each learning rate and writes the results to -out.
func distilPruned(ctx context.Context, path string) error {
	if *out == "" {
		return fmt.Errorf("-pruned needs -out")
	}
	dense, err := graph.Load(path)
	if err != nil {
		return err
	}
	m, err := graph.Load(*pruned)
	if err != nil {
		return err
	}
	// A Fashion-MNIST fixture's top-1 on the 1000 test images; the
	// decoder's quality is measured with pare check on the files.
	top1 := func(*graph.Model) string { return "" }
	if strings.HasPrefix(*model, "fmnist_") {
		x, y, err := testSet()
		if err != nil {
			return err
		}
		top1 = func(m *graph.Model) string {
			a, err := accuracy(ctx, m, x, y)
			if err != nil {
				return err.Error()
			}
			return fmt.Sprintf("%.1f%%", 100*a)
		}
		fmt.Printf("%s: dense %s, pruned %s (%s)\n", *model, top1(dense), top1(m), *pruned)
	}
	fmt.Println("| lr | schedule | mixup | steps | top-1 | CPU s/step | s/step (wall) | model | notes |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, s := range strings.Split(*lrs, ",") {
		lr, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		cpu0 := cpuSeconds()
		student, notes, per, err := distil(ctx, m, dense, lr)
		if err != nil {
			return err
		}
		cpu := (cpuSeconds() - cpu0) / float64(*steps)
		file := fmt.Sprintf("%s/kd-%s.onnx", *out, s)
		if err := student.Save(file, graph.SaveOptions{}); err != nil {
			return err
		}
		fmt.Printf("| %g | %s | %v | %d | %s | %.3f | %.2f | %s | %s |\n", lr, *sched, *mixup, *steps, top1(student), cpu, per, file, strings.Join(notes, "; "))
	}
	return nil
}

// distil copies the pruned model m and distils the copy toward dense at
// learning rate lr on -data, returning it, the run's notes and the wall
// seconds per step.
func distil(ctx context.Context, m, dense *graph.Model, lr float64) (*graph.Model, []string, float64, error) {
	student, err := graph.Clone(m)
	if err != nil {
		return nil, nil, 0, err
	}
	src, err := calib.Open(*data, student, 0)
	if err != nil {
		return nil, nil, 0, err
	}
	defer src.Close()
	start := time.Now()
	notes, err := recovery.Distill(ctx, student, dense, src, recovery.DistillConfig{Steps: *steps, Batch: *batch, LR: lr, Schedule: *sched, Mixup: *mixup, Seed: *seed})
	if err != nil {
		return nil, nil, 0, err
	}
	return student, notes, time.Since(start).Seconds() / float64(*steps), nil
}
