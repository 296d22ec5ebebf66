package report

import (
	"html/template"
	"io"
)

var funcs = template.FuncMap{
	"count": fmtCount, "bytes": fmtBytes, "latency": fmtLatency, "percent": fmtPercent,
	"float": fmtFloat, "change": fmtChange, "points": fmtPoints, "setting": fmtSetting, "short": shortSetting,
	"value": func(v *float64) string {
		if v == nil {
			return none
		}
		return trimZero(template.HTMLEscapeString(fmtFloat(v)))
	},
}

var pages = template.Must(template.New("page").Funcs(funcs).Parse(pageTemplates))

// WriteRunHTML renders a run as a self-contained page.
func WriteRunHTML(w io.Writer, r *Run) error { return pages.ExecuteTemplate(w, "run", r) }

// WriteSummaryHTML renders a summary as a self-contained page.
func WriteSummaryHTML(w io.Writer, s *Summary) error { return pages.ExecuteTemplate(w, "summary", s) }

// pageTemplates holds both pages; the stylesheet is inline so that a page
// is one file with no external assets.
const pageTemplates = `
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:24px auto;max-width:1200px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #dde1e8;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}.wide{overflow-x:auto}th,td{padding:4px 10px;border-bottom:1px solid #e6e9ef;text-align:left;vertical-align:top}
th{background:#f4f6f9;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.meta td:first-child{color:#5b6475}.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.passed,.done,.pass{background:#dff3e4;color:#17632e}.gate-failed,.failed,.fail,.error{background:#fbe0e0;color:#9b1c1c}
.interrupted,.skipped{background:#fdf1d6;color:#7a5200}.star{color:#b7791f;font-weight:700}
svg.chart{display:block;margin:8px 0;font-size:12px}svg .title{font-weight:600;font-size:13px}
svg .track{fill:#eef1f5}svg .bar{fill:#3b6fb6}svg .bar.mark{fill:#d9822b}svg .ref{stroke:#5b6475;stroke-dasharray:4 3}
svg .label,svg .value,svg .tick{fill:#1d2330}svg .axis{fill:#1d2330;font-weight:600}
svg .grid{stroke:#e6e9ef}svg .frame{fill:none;stroke:#aab2c0}svg .front{fill:none;stroke-width:2}
svg .ring{fill:none;stroke-width:2}svg .tag{fill:#5b6475;font-size:11px}svg .dot{stroke:#fff;stroke-width:1}
.s0{fill:#3b6fb6;stroke:#3b6fb6}.s1{fill:#d9822b;stroke:#d9822b}.s2{fill:#2f9e58;stroke:#2f9e58}
.s3{fill:#b83280;stroke:#b83280}.s4{fill:#6b46c1;stroke:#6b46c1}.s5{fill:#4a5568;stroke:#4a5568}
svg .dot.s0,svg .dot.s1,svg .dot.s2,svg .dot.s3,svg .dot.s4,svg .dot.s5{stroke:#fff}
polyline.front,circle.ring{fill:none!important}
code{font-size:12px;background:#f4f6f9;padding:1px 4px;border-radius:3px}
.err{color:#9b1c1c;white-space:pre-wrap}footer{margin-top:32px;color:#7a8394;font-size:12px}
</style></head><body>{{end}}

{{define "metrics"}}
<table id="before-after"><tr><th>figure</th><th>before</th><th>after</th><th>change</th></tr>
<tr><td>parameters</td><td class="n">{{count .Before.Params}}</td><td class="n">{{count .After.Params}}</td><td class="n">{{change .Before.Params .After.Params}}</td></tr>
<tr><td>MACs (batch 1)</td><td class="n">{{count .Before.MACs}}</td><td class="n">{{count .After.MACs}}</td><td class="n">{{change .Before.MACs .After.MACs}}</td></tr>
<tr><td>size on disk</td><td class="n">{{bytes .Before.SizeBytes}}</td><td class="n">{{bytes .After.SizeBytes}}</td><td class="n">{{change .Before.SizeBytes .After.SizeBytes}}</td></tr>
<tr><td>latency (median)</td><td class="n">{{latency .Before.LatencyNs}}</td><td class="n">{{latency .After.LatencyNs}}</td><td class="n">{{change .Before.LatencyNs .After.LatencyNs}}</td></tr>
<tr><td>accuracy (labels)</td><td class="n">{{percent .Before.Accuracy}}</td><td class="n">{{percent .After.Accuracy}}</td><td class="n">{{points .Before.Accuracy .After.Accuracy}}</td></tr>
<tr><td>top-1 agreement with input</td><td class="n">{{percent .Before.Agreement}}</td><td class="n">{{percent .After.Agreement}}</td><td class="n">{{points .Before.Agreement .After.Agreement}}</td></tr>
<tr><td>cosine similarity to input</td><td class="n">{{float .Before.Cosine}}</td><td class="n">{{float .After.Cosine}}</td><td></td></tr>
</table>{{end}}

{{define "run"}}{{template "head" (print "pare run: " .Model)}}
<h1>{{.Model}} <span class="badge {{.Status}}">{{.Status}}</span></h1>
<table class="meta">
<tr><td>input</td><td><code>{{.Input}}</code></td></tr>
<tr><td>recipe</td><td><code>{{.Recipe}}</code></td></tr>
{{if .Setting}}<tr><td>setting</td><td>{{setting .Setting}}</td></tr>{{end}}
<tr><td>started</td><td>{{.Started}}, {{.Duration}} ms</td></tr>
</table>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<h2>Before and after</h2>{{template "metrics" .}}
{{.ChangeChart}}
<h2>Gates</h2>
{{if .Gates}}<table id="gates"><tr><th>gate</th><th>output</th><th>value</th><th>threshold</th><th>result</th><th>detail</th></tr>
{{range .Gates}}<tr><td>{{.Gate}}</td><td>{{.Output}}</td><td class="n">{{value .Value}}</td><td class="n">{{.Threshold}}</td>
<td>{{if .Pass}}<span class="badge pass">pass</span>{{else}}<span class="badge fail">FAIL</span>{{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p>No gates were evaluated.</p>{{end}}
<h2>Steps</h2>
<table id="steps"><tr><th>step</th><th>status</th><th>options</th><th>output</th><th>time</th></tr>
{{range .Steps}}<tr><td>{{.Name}}</td><td><span class="badge {{.Status}}">{{.Status}}</span></td><td>{{setting .Options}}</td>
<td>{{range .Files}}<code>{{.}}</code> {{end}}{{if .Error}}<div class="err">{{.Error}}</div>{{end}}</td><td class="n">{{.Duration}} ms</td></tr>
{{end}}</table>
{{with .AllocationChart}}<h2 id="allocation">Allocation</h2>{{.}}{{end}}
{{if .Layers}}<h2>Layers</h2>{{.LayerChart}}{{end}}
{{if .Notes}}<h2>Notes</h2><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<footer>{{.Schema}} · pare {{.Pare}}</footer></body></html>
{{end}}

{{define "summary"}}{{template "head" (print "pare run: " .Recipe)}}
<h1>{{.Recipe}} <span class="badge {{.Status}}">{{.Status}}</span></h1>
<table class="meta"><tr><td>runs</td><td>{{len .Runs}}</td></tr><tr><td>started</td><td>{{.Started}}, {{.Duration}} ms</td></tr></table>
<h2>Runs</h2>
<div class="wide"><table id="runs"><tr><th>model</th><th>setting</th><th>status</th><th>params</th><th>MACs</th><th>size</th><th>latency</th><th>accuracy</th><th>agreement</th><th>Pareto</th><th>gates failed</th><th>report</th></tr>
{{range .Runs}}<tr><td>{{.Model}}</td><td title="{{setting .Setting}}">{{short .Setting}}</td><td><span class="badge {{.Status}}">{{.Status}}</span></td>
<td class="n">{{count .After.Params}} <small>({{change .Before.Params .After.Params}})</small></td>
<td class="n">{{count .After.MACs}} <small>({{change .Before.MACs .After.MACs}})</small></td>
<td class="n">{{bytes .After.SizeBytes}}</td><td class="n">{{latency .After.LatencyNs}}</td>
<td class="n">{{percent .After.Accuracy}} <small>({{points .Before.Accuracy .After.Accuracy}})</small></td><td class="n">{{percent .After.Agreement}}</td>
<td>{{if .Pareto}}<span class="star" title="on the Pareto front">★</span>{{end}}</td>
<td>{{range .Gates}}{{if not .Pass}}{{.Gate}} {{end}}{{end}}</td><td><a href="{{.Dir}}/report.html" title="{{.Dir}}">open</a></td></tr>
{{end}}</table></div>
<h2>Accuracy against MACs</h2>
{{with .ScatterChart}}{{.}}{{else}}<p>No run measured both MACs and accuracy or agreement.</p>{{end}}
<h2>MACs per run</h2>{{.MACsChart}}
<footer>{{.Schema}} · pare {{.Pare}}</footer></body></html>
{{end}}
`
