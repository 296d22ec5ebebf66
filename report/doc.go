// Package report holds the records pare run writes for each run and for a
// whole recipe (report.json, schema "pare.report/v1") and renders them as
// self-contained HTML pages with inline SVG charts.
//
// A Run is one model (and, in a sweep, one setting) taken through a
// recipe's steps: each step's status, the model's figures before and
// after (parameters, MACs, size, latency, accuracy or agreement), the
// channels kept or sparsity per layer, and the gates with their verdicts.
// A Summary lists the runs of a recipe and marks, per model, the runs on
// the Pareto front of accuracy (or agreement) against MACs.
//
// The JSON field names are stable within a schema version; fields may be
// added. A change that removes or redefines a field bumps the version.
// docs/CLI.md (section run) documents every field.
package report
