package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strings"
)

// Bar is one row of a horizontal bar chart: Value as a fraction of
// Scale's full width, with Text written beside it.
type Bar struct {
	Label string
	Value float64
	Text  string
	// Mark draws the bar in the accent colour (for example a frozen
	// group or a ratio above 1).
	Mark bool
}

// Chart geometry, in SVG user units (pixels at 100%).
const (
	chartWidth  = 760
	barHeight   = 16
	barGap      = 5
	labelWidth  = 250
	valueWidth  = 150
	chartMargin = 28
)

// BarChart draws bars left to right on a common scale whose full width
// is max(scale, largest value); a dashed line marks scale (1 = "as
// before" for ratios, "all kept" for fractions).
func BarChart(title string, bars []Bar, scale float64) template.HTML {
	full := scale
	for _, b := range bars {
		if b.Value > full && !math.IsInf(b.Value, 0) {
			full = b.Value
		}
	}
	if !(full > 0) {
		full = 1
	}
	plotW := float64(chartWidth - labelWidth - valueWidth)
	h := chartMargin + len(bars)*(barHeight+barGap) + 8
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart bars" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		chartWidth, h, chartWidth, h, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="16" class="title">%s</text>`, esc(title))
	for i, bar := range bars {
		y := chartMargin + i*(barHeight+barGap)
		w := plotW * clamp(bar.Value/full, 0, 1)
		cls := "bar"
		if bar.Mark {
			cls = "bar mark"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="label" text-anchor="end">%s</text>`, labelWidth-6, y+barHeight-4, esc(shorten(bar.Label, 34)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" class="track"/>`, labelWidth, y, plotW*clamp(scale/full, 0, 1), barHeight)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" class="%s"><title>%s: %s</title></rect>`,
			labelWidth, y, w, barHeight, cls, esc(bar.Label), esc(bar.Text))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="value">%s</text>`, float64(labelWidth)+plotW+6, y+barHeight-4, esc(bar.Text))
	}
	x := float64(labelWidth) + plotW*clamp(scale/full, 0, 1)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="ref"/>`, x, chartMargin-4, x, h-6)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// ScatterPoint is one run in a scatter plot.
type ScatterPoint struct {
	X, Y   float64
	Label  string
	Series string
	Front  bool
	// Tag, when set, is written beside a point on the front.
	Tag string
}

// Scatter plot geometry.
const (
	scatterW   = 760
	scatterH   = 420
	plotLeft   = 70
	plotRight  = 20
	plotTop    = 34
	plotBottom = 52
)

// Scatter draws points with axes and ticks; the points with Front set are
// ringed and joined, per series, by a line in order of X.
func Scatter(title, xLabel, yLabel string, pts []ScatterPoint) template.HTML {
	x0, x1 := extent(pts, func(p ScatterPoint) float64 { return p.X })
	y0, y1 := extent(pts, func(p ScatterPoint) float64 { return p.Y })
	xt, yt := ticks(x0, x1), ticks(y0, y1)
	x0, x1 = math.Min(x0, xt[0]), math.Max(x1, xt[len(xt)-1])
	y0, y1 = math.Min(y0, yt[0]), math.Max(y1, yt[len(yt)-1])
	pw, ph := float64(scatterW-plotLeft-plotRight), float64(scatterH-plotTop-plotBottom)
	sx := func(v float64) float64 { return plotLeft + pw*(v-x0)/(x1-x0) }
	sy := func(v float64) float64 { return plotTop + ph*(1-(v-y0)/(y1-y0)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart scatter" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		scatterW, scatterH, scatterW, scatterH, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="16" class="title">%s</text>`, esc(title))
	for _, v := range xt {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" class="grid"/>`, sx(v), plotTop, sx(v), plotTop+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="middle">%s</text>`, sx(v), plotTop+ph+16, esc(tickLabel(v)))
	}
	for _, v := range yt {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>`, plotLeft, sy(v), plotLeft+pw, sy(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`, plotLeft-6, sy(v)+4, esc(tickLabel(v)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" class="frame"/>`, plotLeft, plotTop, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>`, plotLeft+pw/2, scatterH-12, esc(xLabel))
	fmt.Fprintf(&b, `<text x="14" y="%.1f" class="axis" text-anchor="middle" transform="rotate(-90 14 %.1f)">%s</text>`,
		plotTop+ph/2, plotTop+ph/2, esc(yLabel))
	series := map[string]int{}
	for _, p := range pts {
		if _, ok := series[p.Series]; !ok {
			series[p.Series] = len(series)
		}
	}
	for s, si := range series {
		var front []ScatterPoint
		for _, p := range pts {
			if p.Series == s && p.Front {
				front = append(front, p)
			}
		}
		sort.Slice(front, func(i, j int) bool { return front[i].X < front[j].X })
		if len(front) > 1 {
			var path []string
			for _, p := range front {
				path = append(path, fmt.Sprintf("%.1f,%.1f", sx(p.X), sy(p.Y)))
			}
			fmt.Fprintf(&b, `<polyline points="%s" class="front s%d"/>`, strings.Join(path, " "), si%palette)
		}
	}
	for _, p := range pts {
		si := series[p.Series] % palette
		if p.Front {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="9" class="ring s%d"/>`, sx(p.X), sy(p.Y), si)
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" class="dot s%d"><title>%s</title></circle>`, sx(p.X), sy(p.Y), si, esc(p.Label))
		if p.Front && p.Tag != "" {
			x, anchor := sx(p.X)+11, "start"
			if sx(p.X) > plotLeft+pw*0.6 { // keep labels on the right half inside the frame
				x, anchor = sx(p.X)-11, "end"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tag" text-anchor="%s">%s</text>`, x, sy(p.Y)+4, anchor, esc(shorten(p.Tag, 30)))
		}
	}
	if len(series) > 1 {
		names := make([]string, 0, len(series))
		for s := range series {
			names = append(names, s)
		}
		sort.Slice(names, func(i, j int) bool { return series[names[i]] < series[names[j]] })
		for i, s := range names {
			y := plotTop + 14 + 16*i
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="5" class="dot s%d"/><text x="%.1f" y="%d" class="tick">%s</text>`,
				plotLeft+pw-150, y-4, series[s]%palette, plotLeft+pw-140, y, esc(shorten(s, 22)))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// palette is the number of series colours the stylesheet defines.
const palette = 6

func extent(pts []ScatterPoint, f func(ScatterPoint) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		lo, hi = math.Min(lo, f(p)), math.Max(hi, f(p))
	}
	if len(pts) == 0 {
		return 0, 1
	}
	if lo == hi {
		pad := math.Max(math.Abs(lo)*0.1, 1e-3)
		return lo - pad, hi + pad
	}
	pad := (hi - lo) * 0.08
	return lo - pad, hi + pad
}

// ticks returns about five round tick values covering [lo, hi].
func ticks(lo, hi float64) []float64 {
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v <= hi+step/2 && len(out) < 20; v += step {
		out = append(out, v)
	}
	return out
}

func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trimZero(fmt.Sprintf("%.2f", v/1e9)) + "G"
	case a >= 1e6:
		return trimZero(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case a >= 1e3:
		return trimZero(fmt.Sprintf("%.2f", v/1e3)) + "K"
	}
	return trimZero(fmt.Sprintf("%.3f", v))
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}

func clamp(v, lo, hi float64) float64 {
	if math.IsNaN(v) {
		return lo
	}
	return math.Max(lo, math.Min(hi, v))
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func esc(s string) string { return html.EscapeString(s) }
