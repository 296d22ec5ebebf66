package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

func TestRecipeSweepGridAndFlags(t *testing.T) {
	r, err := Parse("r.yaml", []byte(`steps:
  - prune: {ratio: 0.3}
  - bench: {batch: "1"}
sweep:
  prune.ratio: [0.1, 0.3, 0.5]
  prune.criterion: [magnitude, random]
`), testSteps())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.settings() {
		got = append(got, s.slug())
	}
	want := "prune.ratio-0.1_prune.criterion-magnitude prune.ratio-0.1_prune.criterion-random " +
		"prune.ratio-0.3_prune.criterion-magnitude prune.ratio-0.3_prune.criterion-random " +
		"prune.ratio-0.5_prune.criterion-magnitude prune.ratio-0.5_prune.criterion-random"
	if strings.Join(got, " ") != want {
		t.Fatalf("grid\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	// The command line library splits slice flags at commas; the values
	// come back together: --sweep takes them as the axis's values, --set
	// as one value, and fixes the axis.
	if err := r.addFlagAxes("sweep", []string{"prune.criterion=random", "magnitude"}); err != nil {
		t.Fatal(err)
	}
	if err := r.addFlagAxes("set", []string{"prune.ratio=0.2", "bench.batch=1", "32"}); err != nil {
		t.Fatal(err)
	}
	ss := r.settings()
	if len(ss) != 2 {
		t.Fatalf("%d settings, want 2 (two criteria)", len(ss))
	}
	opts := ss[0].stepOpts(r, 0)
	if len(opts) != 2 || opts[0].Name != "ratio" || opts[0].Value.Text != "0.2" || opts[1].Value.Text != "random" {
		t.Errorf("prune options at %s: %+v", ss[0], opts)
	}
	if b := ss[1].stepOpts(r, 1); b[0].Value.Text != "1,32" {
		t.Errorf("bench batch %q, want the rejoined 1,32", b[0].Value.Text)
	}
	for _, bad := range [][]string{{"prune"}, {"quant.bits=8"}, {"prune.ratio=lots"}, {"prune.nope=1"}} {
		if err := r.addFlagAxes("sweep", bad); err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "--sweep") {
			t.Errorf("--sweep %v: %v", bad, err)
		}
	}
}

// testSteps are two step kinds with a few options each: enough for the
// recipe's grid and option checks, which do not depend on what the
// steps do.
func testSteps() Steps {
	none := func(*cli.Command, *Env) (Work, error) { return nil, nil }
	args := func(_, current string) []string { return []string{current} }
	return Steps{
		"prune": {Args: args, Prepare: none, Command: func() *cli.Command {
			return &cli.Command{Name: "prune", Flags: []cli.Flag{
				&cli.FloatFlag{Name: "ratio"}, &cli.StringFlag{Name: "criterion"}}}
		}},
		"bench": {Args: args, Prepare: none, Command: func() *cli.Command {
			return &cli.Command{Name: "bench", Flags: []cli.Flag{&cli.StringFlag{Name: "batch"}}}
		}},
	}
}
