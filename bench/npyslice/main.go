// Command npyslice writes rows [from, from+n) of a .npy file to another,
// to draw several calibration sets of one size from one file of
// unlabelled samples (bench/draws.sh).
//
//	go run ./bench/npyslice -in train_x.npy -from 256 -n 256 -out draw.npy
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/pare-dev/pare/tensor"
)

func main() {
	in := flag.String("in", "", "the .npy file to read")
	out := flag.String("out", "", "the .npy file to write")
	from := flag.Int64("from", 0, "first row")
	n := flag.Int64("n", 256, "rows")
	flag.Parse()
	if err := run(*in, *out, *from, *n); err != nil {
		fmt.Fprintln(os.Stderr, "npyslice:", err)
		os.Exit(1)
	}
}

func run(in, out string, from, n int64) error {
	if in == "" || out == "" {
		return fmt.Errorf("-in and -out are required")
	}
	f, err := tensor.OpenNpy(in)
	if err != nil {
		return err
	}
	defer f.Close()
	if from < 0 || n < 1 || from+n > f.Rows() {
		return fmt.Errorf("rows [%d, %d) asked of %s, which has %d", from, from+n, in, f.Rows())
	}
	d, err := f.ReadRows(from, n)
	if err != nil {
		return err
	}
	return tensor.WriteNpyFile(out, d)
}
