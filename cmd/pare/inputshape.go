package main

import (
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/pare-dev/pare/graph"
)

// inputShapeFlag is --input-shape, shared by inspect, prune, bench and
// check.
func inputShapeFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "input-shape", Usage: "NAME=D1,D2,... fixes an input's sizes " + usage + " (several inputs: separate with ';')"}
}

// inputShapes parses an --input-shape value (nil when empty).
func inputShapes(val string) (map[string][]int64, error) {
	if strings.TrimSpace(val) == "" {
		return nil, nil
	}
	out := map[string][]int64{}
	for _, v := range strings.Split(val, ";") {
		v = strings.TrimSpace(v)
		name, dims, err := graph.ParseInputShape(v)
		if err != nil {
			return nil, usageErrorf("--input-shape: %v", err)
		}
		if _, dup := out[name]; dup {
			return nil, usageErrorf("--input-shape: %q given twice", name)
		}
		out[name] = dims
	}
	return out, nil
}

// fixInputShapes applies parsed --input-shape values to m for counting.
func fixInputShapes(m *graph.Model, shapes map[string][]int64) error {
	if len(shapes) == 0 {
		return nil
	}
	if err := m.SetInputShapes(shapes); err != nil {
		return usageErrorf("--input-shape: %v", err)
	}
	return nil
}
