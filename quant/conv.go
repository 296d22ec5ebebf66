package quant

import "fmt"

// convGeom is the geometry of a 2-D Conv, for unfolding its input into
// the patches its weight rows multiply.
type convGeom struct {
	cin, kh, kw  int // input channels per group, kernel
	group        int
	sh, sw       int
	dh, dw       int
	pt, pl       int
	pb, pr       int
	outPerGroupC int
}

func newConvGeom(l *Layer) (*convGeom, error) {
	n := l.Node
	if len(l.Dims) != 4 {
		return nil, fmt.Errorf("%w: %d-D Conv", ErrUnsupported, len(l.Dims)-2)
	}
	if ap := n.StringAttr("auto_pad", "NOTSET"); ap != "NOTSET" {
		return nil, fmt.Errorf("%w: auto_pad %s", ErrUnsupported, ap)
	}
	ints := func(name string, def []int64) []int64 {
		v := n.IntsAttr(name, def)
		if len(v) != len(def) {
			return def
		}
		return v
	}
	s := ints("strides", []int64{1, 1})
	d := ints("dilations", []int64{1, 1})
	p := ints("pads", []int64{0, 0, 0, 0})
	g := int(l.Desc.Group)
	if g < 1 || int(l.Dims[0])%g != 0 {
		return nil, fmt.Errorf("%w: group %d", ErrInvalid, g)
	}
	for _, v := range append(append(s, d...), p...) {
		if v < 0 || v > 1<<20 {
			return nil, fmt.Errorf("%w: Conv attribute value %d", ErrInvalid, v)
		}
	}
	if s[0] == 0 || s[1] == 0 || d[0] == 0 || d[1] == 0 {
		return nil, fmt.Errorf("%w: zero stride or dilation", ErrInvalid)
	}
	return &convGeom{
		cin: int(l.Dims[1]), kh: int(l.Dims[2]), kw: int(l.Dims[3]), group: g,
		sh: int(s[0]), sw: int(s[1]), dh: int(d[0]), dw: int(d[1]),
		pt: int(p[0]), pl: int(p[1]), pb: int(p[2]), pr: int(p[3]),
		outPerGroupC: int(l.Dims[0]) / g,
	}, nil
}

// addPatches unfolds x [N, C, H, W] into rows of cin·kh·kw (channel,
// then kernel row, then kernel column, like the weight) per output
// position and group, and adds them to h.
func (c *convGeom) addPatches(h *Hessian, shape []int64, x []float64) error {
	if len(shape) != 4 || int(shape[1]) != c.cin*c.group {
		return fmt.Errorf("%w: Conv input %v for %d×%d input channels", ErrInvalid, shape, c.group, c.cin)
	}
	n, hh, ww := int(shape[0]), int(shape[2]), int(shape[3])
	oh := (hh+c.pt+c.pb-c.dh*(c.kh-1)-1)/c.sh + 1
	ow := (ww+c.pl+c.pr-c.dw*(c.kw-1)-1)/c.sw + 1
	if oh <= 0 || ow <= 0 {
		return nil
	}
	cols := c.cin * c.kh * c.kw
	n0 := h.N
	rows := make([]float64, 0, oh*ow*cols)
	for b := range n {
		for g := range c.group {
			rows = rows[:0]
			for y := range oh {
				for xo := range ow {
					for ci := range c.cin {
						plane := x[((b*c.cin*c.group)+g*c.cin+ci)*hh*ww:]
						for ky := range c.kh {
							iy := y*c.sh - c.pt + ky*c.dh
							for kx := range c.kw {
								ix := xo*c.sw - c.pl + kx*c.dw
								v := 0.0
								if iy >= 0 && iy < hh && ix >= 0 && ix < ww {
									v = plane[iy*ww+ix]
								}
								rows = append(rows, v)
							}
						}
					}
				}
			}
			h.AddRows(g, rows, nil)
		}
	}
	// Every group saw the same positions: N counts them once.
	h.N = n0 + (h.N-n0)/float64(c.group)
	return nil
}
