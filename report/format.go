package report

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Formatting for the HTML pages; "–" stands for a figure not measured.
const none = "–"

func fmtCount(n *int64) string {
	if n == nil {
		return none
	}
	f := float64(*n)
	for _, u := range []struct {
		div float64
		s   string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "K"}} {
		if math.Abs(f) >= u.div {
			return fmt.Sprintf("%.2f%s", f/u.div, u.s)
		}
	}
	return fmt.Sprint(*n)
}

func fmtBytes(n *int64) string {
	if n == nil {
		return none
	}
	f, units := float64(*n), []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", *n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func fmtLatency(ns *int64) string {
	if ns == nil {
		return none
	}
	return time.Duration(*ns).Round(time.Microsecond).String()
}

func fmtPercent(v *float64) string {
	if v == nil {
		return none
	}
	return fmt.Sprintf("%.2f%%", 100**v)
}

func fmtFloat(v *float64) string {
	if v == nil {
		return none
	}
	return fmt.Sprintf("%.4f", *v)
}

// fmtChange is after relative to before, as a signed percentage.
func fmtChange(before, after *int64) string {
	if before == nil || after == nil || *before == 0 {
		return none
	}
	return fmt.Sprintf("%+.1f%%", 100*float64(*after-*before)/float64(*before))
}

// fmtPoints is the difference of two fractions in percentage points.
func fmtPoints(before, after *float64) string {
	if before == nil || after == nil {
		return none
	}
	return fmt.Sprintf("%+.2f pt", 100*(*after-*before))
}

func fmtSetting(ps []Param) string {
	if len(ps) == 0 {
		return none
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Key + "=" + p.Value
	}
	return strings.Join(parts, ", ")
}

func ratio(before, after *int64) (float64, bool) {
	if before == nil || after == nil || *before == 0 {
		return 0, false
	}
	return float64(*after) / float64(*before), true
}
