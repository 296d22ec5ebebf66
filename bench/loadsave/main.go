// Command loadsave loads an ONNX model with pare's graph package and
// saves it unchanged: the load + save measured by bench/load-save.sh.
//
//	go run ./bench/loadsave in.onnx out.onnx [-external]
package main

import (
	"fmt"
	"os"

	"github.com/pare-dev/pare/graph"
)

func main() {
	args := os.Args[1:]
	external := false
	if len(args) == 3 && args[2] == "-external" {
		external, args = true, args[:2]
	}
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: loadsave in.onnx out.onnx [-external]")
		os.Exit(2)
	}
	m, err := graph.Load(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := m.Save(args[1], graph.SaveOptions{ExternalData: external}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
