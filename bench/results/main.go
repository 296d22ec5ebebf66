// Command results measures the accuracy of pruned fixture models without
// fine-tuning and writes the "Structured pruning (CNN)" and "Criteria"
// sections of docs/RESULTS.md:
//
//	go run ./bench/results                  # both sections, into docs/RESULTS.md
//	go run ./bench/results -section cnn     # one section
//	go run ./bench/results -stdout          # print instead of writing
//
// Every run prunes a fresh copy of the model, runs it in onnxruntime on
// the Fashion-MNIST test images (-x/-y: by default the 1000 of
// fixtures/data; all 10000, written by `go run ./fixtures/gen/fmnisttest`
// into ~/.cache/pare/fmnist, with -x ~/.cache/pare/fmnist/fmnist_test10k_x.npy
// -y ~/.cache/pare/fmnist/fmnist_test10k_y.npy) and reports top-1
// accuracy and the wall time of the pruning step (scoring, selection,
// compensation, application and recovery; not the evaluation).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/pare-dev/pare/check"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/pruner"
	"github.com/pare-dev/pare/tensor"
)

var (
	root      = flag.String("root", ".", "repository root")
	section   = flag.String("section", "all", "cnn, criteria, allocation or all")
	models    = flag.String("models", "", "allocation: only the models whose path contains one of these comma-separated strings")
	stdout    = flag.Bool("stdout", false, "print the sections instead of writing docs/RESULTS.md")
	rows      = flag.String("rows", "", "allocation: measure only the rows whose name contains one of these comma-separated strings; the others are copied from docs/RESULTS.md when its tables were measured on the same test images")
	testX     = flag.String("x", "fixtures/data/fmnist_test_x.npy", "test images (relative to -root unless absolute)")
	testY     = flag.String("y", "fixtures/data/fmnist_test_y.npy", "test labels")
	foldFiles = flag.String("folds", "", "with -merge: sections measured with -rotate-calib, whose candidates' held-out scores give the cross-fitted ranking in the proxy summary")
	calibFlag = flag.String("calib", "", "allocation: calibration data instead of fixtures/data/fmnist_calib_x.npy (another draw of unlabelled images)")
	ratioFlag = flag.String("ratios", "", "allocation: comma-separated ratios instead of 0.5,0.7")
	rotate    = flag.Int("rotate-calib", 0, "allocation: calibrate on fmnist_calib_x.npy rotated by this many samples (sample N first), so that the search holds out another slice")
	merge     = flag.String("merge", "", "allocation: join the comma-separated sections printed by -section allocation -models M -stdout, one per model, with the summaries over all of them, instead of measuring")
)

// calibFile is the calibration data: fixtures/data/fmnist_calib_x.npy,
// or a rotated copy of it (-rotate-calib).
var calibFile = "fixtures/data/fmnist_calib_x.npy"

// inRoot resolves a path given relative to the repository root.
func inRoot(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(*root, p)
}

// testSet names the test images in the generated text: "the 1000 test
// images of `fixtures/data/fmnist_test_x.npy`", a home directory shown
// as ~.
func (e *evaluator) testSet() string {
	p := *testX
	if home, err := os.UserHomeDir(); err == nil && home != "" && strings.HasPrefix(p, home+"/") {
		p = "~" + p[len(home):]
	}
	return fmt.Sprintf("the %d test images of `%s`", len(e.y), p)
}

type evaluator struct {
	x tensor.Dense
	y []int64
}

func newEvaluator() (*evaluator, error) {
	f, err := tensor.OpenNpy(inRoot(*testX))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	x, err := f.ReadAll()
	if err != nil {
		return nil, err
	}
	g, err := tensor.OpenNpy(inRoot(*testY))
	if err != nil {
		return nil, err
	}
	defer g.Close()
	yd, err := g.ReadAll()
	if err != nil {
		return nil, err
	}
	y, err := yd.Int64s()
	if err != nil {
		return nil, err
	}
	if x.Rows() != int64(len(y)) {
		return nil, fmt.Errorf("%s: %d images, %s: %d labels", *testX, x.Rows(), *testY, len(y))
	}
	return &evaluator{x: x, y: y}, nil
}

// accuracy returns the top-1 accuracy of m on the test set.
func (e *evaluator) accuracy(ctx context.Context, m *graph.Model) (float64, error) {
	logits, err := e.logits(ctx, m)
	if err != nil {
		return 0, err
	}
	return check.Top1(logits, e.y), nil
}

// logits returns m's first output on the test images.
func (e *evaluator) logits(ctx context.Context, m *graph.Model) ([]float32, error) {
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	s, err := ort.NewSession(b, ort.Options{Threads: runtime.NumCPU()})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	in := s.Inputs()[0].Name
	outs, err := s.RunBatched(ctx, map[string]tensor.Dense{in: e.x}, nil, 250)
	if err != nil {
		return nil, err
	}
	return outs[0].Float32s()
}

// run prunes a fresh copy of the model file with cfg and measures it.
type measured struct {
	acc   float64
	wall  time.Duration
	notes []string
	err   error
}

func (e *evaluator) run(ctx context.Context, model string, cfg pruner.Config) measured {
	m, err := graph.Load(filepath.Join(*root, model))
	if err != nil {
		return measured{err: err}
	}
	start := time.Now()
	an, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		return measured{err: err}
	}
	if cfg.Calib != "" {
		cfg.Calib = inRoot(cfg.Calib)
	}
	out, err := pruner.Run(ctx, m, an, nil, cfg)
	if err != nil {
		return measured{err: err}
	}
	wall := time.Since(start)
	acc, err := e.accuracy(ctx, m)
	return measured{acc: acc, wall: wall, notes: out.Notes, err: err}
}

func nproc() int { return runtime.NumCPU() }

func settings(criterion, scope string, ratio float64) prune.Settings {
	return prune.Settings{Criterion: criterion, Scope: scope, Target: "channels", Ratio: ratio, MaxLayerRatio: 0.8, Seed: 1}
}

func cell(r measured) string {
	if r.err != nil {
		return "error"
	}
	return fmt.Sprintf("%.1f%%", 100*r.acc)
}

// cnnSection: magnitude L1, L2 and random, global and local.
func cnnSection(ctx context.Context, e *evaluator) (string, error) {
	const model = "fixtures/models/fmnist_resnet_op13.onnx"
	ratios := []float64{0.1, 0.2, 0.3, 0.5}
	var b strings.Builder
	dense, err := e.dense(ctx, model)
	if err != nil {
		return "", err
	}
	b.WriteString("Generated by `go run ./bench/results` (this section alone: `-section cnn`).\n\n")
	fmt.Fprintf(&b, "Trained Fashion-MNIST ResNet (`%s`, batch norms folded), top-1 accuracy on\n", model)
	fmt.Fprintf(&b, "%s without fine-tuning, after removing the given\n", e.testSet())
	fmt.Fprintf(&b, "fraction of all prunable channels (`--target channels`, `--max-layer-ratio 0.8`).\n")
	fmt.Fprintf(&b, "Dense: %.1f%%.\n\n", 100*dense)
	fmt.Fprintf(&b, "| criterion | scope |")
	for _, r := range ratios {
		fmt.Fprintf(&b, " %.1f |", r)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(ratios)) + "\n")
	for _, crit := range []string{"l1", "l2", "random"} {
		for _, scope := range []string{"global", "local"} {
			fmt.Fprintf(&b, "| %s | %s |", crit, scope)
			for _, r := range ratios {
				res := e.run(ctx, model, pruner.Config{Settings: settings(crit, scope, r)})
				if res.err != nil {
					fmt.Fprintf(os.Stderr, "%s %s %.1f: %v\n", crit, scope, r, res.err)
				}
				fmt.Fprintf(&b, " %s |", cell(res))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\nrandom uses `--seed 1`.\n")
	return b.String(), nil
}

func (e *evaluator) dense(ctx context.Context, model string) (float64, error) {
	m, err := graph.Load(filepath.Join(*root, model))
	if err != nil {
		return 0, err
	}
	return e.accuracy(ctx, m)
}

// replaceSection replaces the body of "## title" in doc (up to the next
// "## " heading), or appends the section.
func replaceSection(doc, title, body string) string {
	head := "## " + title + "\n"
	content := head + "\n" + strings.TrimRight(body, "\n") + "\n"
	i := strings.Index(doc, head)
	if i < 0 {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		return doc + content
	}
	rest := doc[i+len(head):]
	j := regexp.MustCompile(`(?m)^## `).FindStringIndex(rest)
	end := len(doc)
	if j != nil {
		end = i + len(head) + j[0]
		content += "\n"
	}
	return doc[:i] + content + doc[end:]
}

func main() {
	flag.Parse()
	ctx := context.Background()
	if *merge != "" {
		var folds []string
		if *foldFiles != "" {
			folds = strings.Split(*foldFiles, ",")
		}
		s, err := mergeAllocation(strings.Split(*merge, ","), folds)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("## Allocation, compensation and steps\n\n%s", s)
		return
	}
	if *calibFlag != "" {
		calibFile = *calibFlag
	}
	if *rotate != 0 {
		p, err := rotatedCalib(*rotate)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.Remove(p)
		calibFile = p
	}
	e, err := newEvaluator()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sections := map[string]string{}
	var order []string
	if *section == "cnn" || *section == "all" {
		s, err := cnnSection(ctx, e)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sections["Structured pruning (CNN)"] = s
		order = append(order, "Structured pruning (CNN)")
	}
	if *section == "criteria" || *section == "all" {
		s, err := criteriaSection(ctx, e)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sections["Criteria"] = s
		order = append(order, "Criteria")
	}
	if *section == "allocation" || *section == "all" {
		s, err := allocationSection(ctx, e)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sections["Allocation, compensation and steps"] = s
		order = append(order, "Allocation, compensation and steps")
	}
	if *stdout {
		for _, t := range order {
			fmt.Printf("## %s\n\n%s\n", t, sections[t])
		}
		return
	}
	path := filepath.Join(*root, "docs/RESULTS.md")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	doc := string(old)
	if doc == "" {
		doc = "# Results\n\nMeasured accuracy of pruned and quantized fixture models. Each section\nsays the command that regenerates it.\n"
	}
	for _, t := range order {
		doc = replaceSection(doc, t, sections[t])
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// rotatedCalib writes the calibration samples rotated by n (sample n
// first) to a temporary file.
func rotatedCalib(n int) (string, error) {
	d, err := tensor.ReadNpyFile(inRoot(calibFile))
	if err != nil {
		return "", err
	}
	v, ok := d.Data.([]float32)
	rows := int(d.Rows())
	if !ok || rows == 0 || n <= 0 || n >= rows {
		return "", fmt.Errorf("-rotate-calib %d: %s has %d float32 samples", n, calibFile, rows)
	}
	per := len(v) / rows
	r := append(append([]float32{}, v[n*per:]...), v[:n*per]...)
	out, err := tensor.New(d.Shape, r)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", fmt.Sprintf("fmnist_calib_rot%d_*.npy", n))
	if err != nil {
		return "", err
	}
	f.Close()
	return f.Name(), tensor.WriteNpyFile(f.Name(), out)
}

// calibName names the calibration data in the generated text.
func calibName() string {
	if *rotate != 0 {
		return fmt.Sprintf("`fixtures/data/fmnist_calib_x.npy` rotated by %d samples (`-rotate-calib %d`)", *rotate, *rotate)
	}
	return "`" + calibFile + "`"
}
